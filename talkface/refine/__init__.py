"""The memory-augmented GAN refiner: coarse render -> photoreal face (see talkface.refine.train)."""
