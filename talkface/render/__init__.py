"""Drawing faces: the mesh preview now; the textured renderer and compositing later."""
