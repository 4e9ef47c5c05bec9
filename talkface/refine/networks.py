"""Generator, discriminators and the losses that need no pretrained network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

# generator input, in this channel order: rendered frame t (3), rendered frame t-1 (3),
# memory read (3), face coverage (1), mouth opening (1)
IN_CHANNELS = 11


class FastConvNet(nn.Module):
    """A convolution network that can run in bfloat16 on hardware made for it.

    `set_precision(True)` stores the weights channels-last and runs the forward pass under
    bfloat16 autocast; inputs and outputs stay float32, so losses, skip connections and
    everything around the network keep full precision. `channels_last` alone (float32) makes
    inference on a CPU faster too (the generator at 192 px: 28.8 -> 20.1 ms a frame on 2 cores,
    the same output within 3e-7), but not training (0.46 -> 0.49 s a step), so it is asked for
    where the network only runs (`Refiner.load`).
    """

    bfloat16 = False
    channels_last = False

    def set_precision(self, bfloat16: bool, channels_last: bool | None = None) -> "FastConvNet":
        """bfloat16 autocast on or off; `channels_last` (default: with bfloat16) the memory layout."""
        self.bfloat16 = bfloat16
        self.channels_last = bfloat16 if channels_last is None else channels_last
        return self.to(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def _autocast(self, x: torch.Tensor):
        return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bfloat16)


def _conv(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    padding = 1 if stride == 2 else kernel // 2
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, padding), nn.LeakyReLU(0.2, inplace=True))


class Generator(FastConvNet):
    """A small U-Net: rendered crops + memory read -> a correction added to the rendered crop.

    The last layer starts near zero, so an untrained generator returns the render almost
    unchanged, and where the render is already right (the background around the face) it
    learns to leave it.
    """

    def __init__(self, channels: tuple[int, int, int, int] = (16, 32, 64, 128), n_residual: int = 4):
        super().__init__()
        c0, c1, c2, c3 = channels
        self.enc0 = _conv(IN_CHANNELS, c0)
        self.enc1 = _conv(c0, c1, 4, 2)
        self.enc2 = _conv(c1, c2, 4, 2)
        self.enc3 = _conv(c2, c3, 4, 2)
        self.middle = nn.Sequential(*[_conv(c3, c3) for _ in range(n_residual)])
        self.dec2 = _conv(c3 + c2, c2)
        self.dec1 = _conv(c2 + c1, c1)
        self.dec0 = _conv(c1 + c0, c0)
        self.out = nn.Conv2d(c0, 3, 3, 1, 1)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 11, S, S) in [-1, 1] -> (B, 3, S, S) refined crop (about [-1, 1]); S divisible by 8."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with self._autocast(inputs):
            correction = self._correction(inputs)
        # no squashing non-linearity: a saturated one passes on subnormal gradients, which slow
        # CPU convolutions down ~10x (values leaving [-1, 1] are clipped when converted to pixels)
        return inputs[:, :3] + correction.float()

    def _correction(self, inputs: torch.Tensor) -> torch.Tensor:
        e0 = self.enc0(inputs)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e3 = e3 + self.middle(e3)
        d2 = self.dec2(torch.cat([_up(e3), e2], 1))
        d1 = self.dec1(torch.cat([_up(d2), e1], 1))
        d0 = self.dec0(torch.cat([_up(d1), e0], 1))
        return self.out(d0)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class PatchDiscriminator(FastConvNet):
    """PatchGAN with spectral norm; returns every layer's features (the last is the score map)."""

    def __init__(self, in_channels: int, width: int = 32, n_layers: int = 3):
        super().__init__()
        layers, channels = [], in_channels
        for index in range(n_layers):
            out_channels = width * 2**index
            layers.append(nn.Sequential(spectral_norm(nn.Conv2d(channels, out_channels, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)))
            channels = out_channels
        layers.append(spectral_norm(nn.Conv2d(channels, 1, 3, 1, 1)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        with self._autocast(x):
            x = x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
            for layer in self.layers:
                x = layer(x)
                features.append(x)
        return [feature.float() for feature in features]


def gan_loss(score: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss."""
    return ((score - (1.0 if real else 0.0)) ** 2).mean()


def feature_matching(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """L1 between discriminator features of fake and real (score map excluded)."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake[:-1], real[:-1])) / max(1, len(fake) - 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), each channel alone, edges reflected."""
    radius = max(1, int(3.5 * sigma + 0.5))
    coords = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    gauss = torch.exp(-(coords**2) / (2 * sigma**2))
    gauss = gauss / gauss.sum()
    channels = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, gauss.view(1, 1, 1, -1).expand(channels, 1, 1, -1).contiguous(), groups=channels)
    return F.conv2d(x, gauss.view(1, 1, -1, 1).expand(channels, 1, -1, 1).contiguous(), groups=channels)


def ssim_loss(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """1 - mean SSIM (Gaussian window, 11 x 11 at sigma 1.5) of two (B, C, H, W) images in [-1, 1]."""
    a, b = (a + 1) / 2, (b + 1) / 2
    blur = lambda x: gaussian_blur(x, sigma)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return 1 - ssim.mean()
