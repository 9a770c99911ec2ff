"""WanAnimate's LIA motion encoder: a face crop -> a motion vector (Wan2.2 `motion_encoder`).

A StyleGAN-style image encoder (equalized convs, blur-downsampling residual blocks) gives an
appearance code; five equalized linear layers (no activation between them) turn it into
`motion_dim` coefficients alpha; the motion vector is alpha @ Q^T with Q the Q factor of
LAPACK's (Householder) QR of the learned `direction` matrix. The QR's sign convention is part
of the model: a Gram-Schmidt QR (positive diagonal R) flips columns of Q and changes the output.

State-dict names follow the reference (`enc.net_app.convs.2.conv2.1.weight`, `enc.fc.0.weight`,
`dec.direction.weight`). The blur kernels are constants computed here, not loaded: checkpoints
with or without their `...kernel` buffers load alike.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# Faces are encoded in chunks of this many frames (the reference's encode batch; no effect on values).
ENCODE_BATCH = 8
_BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)
_LEAKY_SLOPE = 0.2
_LEAKY_GAIN = math.sqrt(2.0)


@functools.lru_cache(maxsize=8)
def _blur_kernel(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    taps = torch.tensor(_BLUR_TAPS, dtype=torch.float32)
    kernel = taps[None, :] * taps[:, None]
    return (kernel / kernel.sum()).to(device=device, dtype=dtype)


class Blur(nn.Module):
    """[1,3,3,1] separable blur with asymmetric zero padding (upfirdn2d with up = down = 1)."""

    def __init__(self, pad: tuple[int, int]):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p0, p1 = self.pad
        x = F.pad(x, [p0, p1, p0, p1])
        channels = x.shape[1]
        kernel = _blur_kernel(x.device, x.dtype)
        weight = kernel.flip(0, 1).expand(channels, 1, *kernel.shape).contiguous()  # an expanded weight is slow
        return F.conv2d(x, weight, groups=channels)


class EqualConv2d(nn.Module):
    """Conv2d whose stored weight is scaled by 1/sqrt(fan_in) at run time."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, bias=True, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(cout, device=device, dtype=dtype)) if bias else None
        self.scale = 1 / math.sqrt(cin * kernel * kernel)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, self.weight.to(x.dtype) * self.scale, bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear whose stored weight is scaled by 1/sqrt(fan_in) at run time (no activation here)."""

    def __init__(self, cin, cout, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(cout, device=device, dtype=dtype))
        self.scale = 1 / math.sqrt(cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype) * self.scale, self.bias.to(x.dtype))


class FusedLeakyReLU(nn.Module):
    """leaky_relu(x + bias, 0.2) * sqrt(2), bias [1, C, 1, 1]."""

    def __init__(self, channels, device=None, dtype=None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.to(x.dtype), _LEAKY_SLOPE) * _LEAKY_GAIN


def conv_layer(cin, cout, kernel, downsample=False, activate=True, bias=True, **kw) -> nn.Sequential:
    """The reference's ConvLayer: [Blur] + EqualConv2d + [FusedLeakyReLU], same child indices."""
    layers = []
    if downsample:
        p = (len(_BLUR_TAPS) - 2) + (kernel - 1)
        layers.append(Blur(((p + 1) // 2, p // 2)))
        layers.append(EqualConv2d(cin, cout, kernel, stride=2, padding=0, bias=bias and not activate, **kw))
    else:
        layers.append(EqualConv2d(cin, cout, kernel, padding=kernel // 2, bias=bias and not activate, **kw))
    if activate:
        if not bias:
            raise ValueError("an activated LIA conv always has a bias")
        layers.append(FusedLeakyReLU(cout, **kw))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """(conv2(conv1(x)) + skip(x)) / sqrt(2), halving the feature map."""

    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv1 = conv_layer(cin, cin, 3, **kw)
        self.conv2 = conv_layer(cin, cout, 3, downsample=True, **kw)
        self.skip = conv_layer(cin, cout, 1, downsample=True, activate=False, bias=False, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class EncoderApp(nn.Module):
    """Face crop [N, 3, S, S] -> appearance code [N, style_dim]."""

    def __init__(self, size: int, style_dim: int, channels: dict, **kw):
        super().__init__()
        self.size = size
        self.convs = nn.ModuleList([conv_layer(3, channels[size], 1, **kw)])
        cin = channels[size]
        s = size
        while s > 4:
            s //= 2
            self.convs.append(ResBlock(cin, channels[s], **kw))
            cin = channels[s]
        self.convs.append(EqualConv2d(cin, style_dim, 4, padding=0, bias=False, **kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        return x.flatten(1)


class Encoder(nn.Module):
    def __init__(self, size, style_dim, motion_dim, channels, **kw):
        super().__init__()
        self.net_app = EncoderApp(size, style_dim, channels, **kw)
        self.fc = nn.Sequential(*[EqualLinear(style_dim, style_dim, **kw) for _ in range(4)],
                                EqualLinear(style_dim, motion_dim, **kw))

    def motion_coefficients(self, faces: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net_app(faces))


class Direction(nn.Module):
    """Learned motion basis [motion_vector_dim, motion_dim]; used through its (LAPACK-signed) QR factor Q."""

    def __init__(self, rows: int, motion_dim: int, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(rows, motion_dim, device=device, dtype=dtype))

    def basis(self) -> torch.Tensor:
        """Q [rows, motion_dim] float32 of qr(weight + 1e-8): Householder QR, whose column signs the model was trained
        with (computed on the CPU so every device gives the same signs)."""
        q, _ = torch.linalg.qr(self.weight.detach().float().cpu() + 1e-8)
        return q.to(self.weight.device)

    def forward(self, alpha: torch.Tensor) -> torch.Tensor:
        return alpha.float() @ self.basis().T


class Synthesis(nn.Module):
    def __init__(self, rows, motion_dim, **kw):
        super().__init__()
        self.direction = Direction(rows, motion_dim, **kw)


class MotionEncoder(nn.Module):
    """LIA `Generator`, encoder side only: face crops -> motion vectors [N, rows] float32."""

    def __init__(self, size, style_dim, motion_dim, channels, rows=512, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.size = size
        self.enc = Encoder(size, style_dim, motion_dim, channels, **kw)
        self.dec = Synthesis(rows, motion_dim, **kw)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """faces [N, 3, size, size] in [-1, 1] -> [N, rows] float32, computed in chunks of ENCODE_BATCH frames."""
        q = self.dec.direction.basis()
        parts = []
        for start in range(0, faces.shape[0], ENCODE_BATCH):
            alpha = self.enc.motion_coefficients(faces[start:start + ENCODE_BATCH])
            parts.append(alpha.float() @ q.T)
        return torch.cat(parts)
