"""Coarse frames: the textured face rendered at its pose, blended into a background frame.

When the background frame shows the person's own face (a clip frame in `speak`, the video's own
frame in `render --onto` and in refiner training) and its mesh is known, the skin away from the
mouth is not the texture's (a median of frames: smooth, no pores, no creases) but that frame's
own skin moved through the mesh to the new pose and expression: one bicubic resample, so the
cheeks, nose and forehead keep the real frame's detail. The mouth and the skin around it, which
the new expression changes, stay the render's (the refiner paints them).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from talkface.face import topology
from talkface.face.geometry import screen_cross
from talkface.face.model import MeshFaceModel
from talkface.render.headwarp import SHARPEN_FROM, sharp_remap
from talkface.render.rasterizer import interpolate_covered, rasterize, sample_texture

# the inner lip contour, in order around the mouth opening (MediaPipe indices)
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
MOUTH_SHADE = 0.3  # the mouth interior is the lips' colour this dark (the refiner paints teeth later)
MOUTH_DEEP = 0.1  # a photo's mouth (no refiner) darkens to this at the opening's middle (`_throat`)
MOUTH_EDGE_SIGMA = 0.5  # px: blur of the mouth opening's edge (anti-aliasing; a one-pixel box filter is 0.3)
FEATHER_SIGMA = 2.0  # px: softness of the face's edge
ERODE_PX = 2  # px the face mask shrinks before feathering, so no background-coloured rim shows
GAIN_LIMITS = (0.7, 1.4)  # per-channel colour correction towards the background frame's light
# eye distances from the nearest lip point: the render's (0) up to the frame's own skin (1). From
# (0.25, 0.55) to (0.1, 0.3): Obama's `speak` face detail band 0.80 -> 0.87 of real (the median
# texture had drawn the upper lip's skin, the chin and the folds beside the mouth); (0.05, 0.2) no more
SKIN_RAMP = (0.1, 0.3)
# the kept skin's one resampling: a clip profile's (its own frame, in place or with the head
# turned), bicubic; a photo's, carried over the whole face, Lanczos (8x8): at a half-pixel shift
# bicubic keeps 0.6 of a photo's Laplacian variance, Lanczos 0.8 (photo profiles' face sharpness
# 0.63-0.76 -> 0.65-0.78 of the photo's). On clip frames it measured no sharper (Obama's `speak`
# in place 0.797 -> 0.799 of real; turned frames' face Laplacian variance 0.6 % more on two
# follow-benchmark people) and cost 6 ms more a 250-px face, 17 ms a 500-px one
SKIN_INTERPOLATION = (cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)
SKIN_STRETCH = (0.4, 0.7)  # a triangle this much smaller in the source frame than drawn (seen edge-on there): render's (0) to own (1)
# px around the drawn vertices that compositing touches: the Gaussian feather's reach (4 sigma)
# plus the erosion, so working in this box gives exactly the full frame's result
BOX_MARGIN_PX = int(4 * FEATHER_SIGMA) + ERODE_PX + 2


class FaceCompositor:
    """Renders one person's face into frames. Tensors live on `device` ('cpu' or 'cuda')."""

    def __init__(self, model: MeshFaceModel, device: str = "cpu"):
        self.model = model
        self.device = torch.device(device)
        self.triangles = torch.as_tensor(model.triangles, dtype=torch.long, device=self.device)
        self.uv = torch.as_tensor(model.uv, dtype=torch.float32, device=self.device)
        self.texture = torch.as_tensor(model.texture, dtype=torch.float32, device=self.device)
        self.drawn = np.unique(model.triangles)  # the vertices the triangles use
        self.teeth = None  # a PhotoMouth (render/mouth.py) pasted into the mouth's opening, for photo profiles
        self.skin = torch.as_tensor(skin_weights(model.mean_shape), dtype=torch.float32, device=self.device)
        self.skin_interpolation = SKIN_INTERPOLATION[0]

    def keep_whole_face(self) -> None:
        """Keep the source's own pixels over the whole face, lips included, not only away from the
        mouth: for a photo profile, whose texture was baked from that very photo, the photo
        carried through the mesh is the texture without its second resampling (a sharper chin
        and lips). A clip's background frame shows other lips than the motion's, so clip
        profiles keep the render's mouth (skin_weights). The photo is resampled with Lanczos
        (SKIN_INTERPOLATION)."""
        self.skin = torch.ones_like(self.skin)
        self.skin_interpolation = SKIN_INTERPOLATION[1]

    def render(self, vertices: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Textured face: (H, W, 3) float colours and (H, W) bool coverage."""
        colours, covered, _ = self._render(vertices, size)
        return colours, covered

    def _render(self, vertices: np.ndarray, size: tuple[int, int], source: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, tuple | None]:
        """The textured face and, with `source` (V, >=2: where the vertices are in another image),
        that image's skin map: (map_x, map_y, weight) (H, W) float32, where each covered pixel's
        point of the face is in the source image and how much of its own skin to keep."""
        fragments = rasterize(torch.as_tensor(vertices, dtype=torch.float32, device=self.device), self.triangles, size)
        width, height = size
        attributes = self.uv
        if source is not None:
            attributes = torch.cat([self.uv, torch.as_tensor(source[:, :2], dtype=torch.float32, device=self.device), self.skin[:, None]], 1)
        covered, values = interpolate_covered(fragments, self.triangles, attributes)  # texture only the covered pixels
        colours = torch.zeros((height * width, 3), dtype=torch.float32, device=self.device)
        colours[covered] = sample_texture(self.texture, values[None, :, :2]).reshape(-1, 3)
        skin = None
        if source is not None:
            seen = torch.as_tensor(_seen_in_source(vertices, source, self.model.triangles), dtype=torch.float32, device=self.device)
            maps = torch.full((height * width, 3), -1.0, dtype=torch.float32, device=self.device)
            maps[covered] = values[:, 2:]
            maps[covered, 2] *= seen[fragments.triangle.view(-1)[covered]]
            maps = maps.view(height, width, 3).cpu().numpy()
            skin = (maps[..., 0], maps[..., 1], np.maximum(maps[..., 2], 0))
        return colours.view(height, width, 3).cpu().numpy(), fragments.mask.cpu().numpy(), skin

    def composite(self, background: np.ndarray, vertices: np.ndarray, source: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Blend the face at `vertices` (V, 3 pixels) into `background` (RGB uint8): the frame and
        the face's blend weight (see `composite_keeping`)."""
        frame, weight, _ = self.composite_keeping(background, vertices, source)
        return frame, weight

    def composite_keeping(
        self, background: np.ndarray, vertices: np.ndarray, source: np.ndarray | None = None, source_image: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Blend the face at `vertices` (V, 3 pixels) into `background` (RGB uint8).

        Only a box around the face is worked on (a small face in a large frame costs what its
        box costs); outside it the frame is the background's. `source`: where the same face's
        vertices are in `background` (its own fitted face), or in `source_image` when given (a
        frame the background was made from, such as the clip frame before its head was turned),
        whose skin is then kept away from the mouth; None: no usable face of the person is at
        hand (texture only).

        Returns:
            The frame (RGB uint8), the blend weight of the face (H, W) float in [0, 1], and the
            share of each pixel that is the background's own skin kept in the face (H, W) float
            in [0, 1] (real pixels the refiner leaves alone).
        """
        height, width = background.shape[:2]
        frame, weight, kept = background.copy(), np.zeros((height, width), np.float32), np.zeros((height, width), np.float32)
        points = vertices[self.drawn, :2]
        finite = np.isfinite(points).all(1)
        if not finite.any():
            return frame, weight, kept
        x0, y0 = np.maximum(np.floor(points[finite].min(0)).astype(int) - BOX_MARGIN_PX, 0)
        x1, y1 = np.minimum(np.ceil(points[finite].max(0)).astype(int) + BOX_MARGIN_PX + 1, [width, height])
        if x1 - x0 < 4 or y1 - y0 < 4:  # the face is outside the frame
            return frame, weight, kept
        own = None
        if source is not None and np.isfinite(source[self.drawn, :2]).all():
            own = (background if source_image is None else source_image, source, self.skin_interpolation)
        inside, box_weight, box_kept = self._composite_box(background[y0:y1, x0:x1], vertices - np.array([x0, y0, 0], vertices.dtype), own, (x0, y0))
        frame[y0:y1, x0:x1], weight[y0:y1, x0:x1], kept[y0:y1, x0:x1] = inside, box_weight, box_kept
        return frame, weight, kept

    def _composite_box(
        self, background: np.ndarray, vertices: np.ndarray, own: tuple | None = None, origin: tuple[int, int] = (0, 0)
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        height, width = background.shape[:2]
        colours, covered, skin = self._render(vertices, (width, height), None if own is None else own[1])
        covered_u8 = covered.view(np.uint8)
        colours = _match_light(colours, background, covered_u8)
        keep = np.zeros((height, width), np.float32)
        if skin is not None:  # the frame's own skin, moved to the new pose and expression (as sharp as bicubic: no blur)
            map_x, map_y, keep = skin
            moved = _moved_skin(own[0], map_x, map_y, keep, own[2], origin).astype(np.float32)
            colours += keep[..., None] * (moved - colours)
        mouth = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mouth, [np.round(vertices[list(INNER_LIPS), :2]).astype(np.int32)], 1)
        mouth &= 1 - covered_u8
        if mouth.any() and covered.any():
            shade = np.array(cv2.mean(colours, covered_u8)[:3], np.float32) * MOUTH_SHADE
            inside = mouth.view(bool)
            if self.teeth is not None:  # a photo (no refiner paints its mouth): the dark deepens into the throat
                colours[inside] = shade * _throat(mouth)[inside][:, None]
                self.teeth.paste(colours, mouth, vertices)
            else:  # a clip's refiner was trained on this flat dark
                colours[inside] = shade
            _soften_edge(colours, mouth)
        face = covered_u8 | mouth
        weight = _feather(face)
        # the feather reaches a pixel or two past the face's edge: there the face has no colour
        # of its own, so the background's is used (no dark or foreign rim)
        np.copyto(colours, background, where=(face == 0)[..., None])
        frame = background.astype(np.float32)
        frame += weight[..., None] * (colours - frame)
        frame += 0.5
        return np.clip(frame, 0, 255, out=frame).astype(np.uint8), weight, weight * keep


_GRID = [np.zeros((2, 0, 0), np.float32)]  # the largest pixel grid asked for so far (read-only)


def _pixel_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) float32 pixel coordinates of a box of `shape`, read-only views of one grid
    kept as large as the largest box asked for (a face's box changes its size by a pixel or two
    from frame to frame; making the grid anew cost 1-2 ms a frame)."""
    grid = _GRID[0]
    if grid.shape[1] < shape[0] or grid.shape[2] < shape[1]:
        grid = np.mgrid[0 : max(shape[0], grid.shape[1]), 0 : max(shape[1], grid.shape[2])].astype(np.float32)
        grid.flags.writeable = False
        _GRID[0] = grid
    return grid[0, : shape[0], : shape[1]], grid[1, : shape[0], : shape[1]]


def _moved_skin(
    image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, keep: np.ndarray, interpolation: int, origin: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """`image` read at (map_x, map_y) (float32 maps of a box whose first pixel is `origin` in the
    image) where `keep` > 0. Bicubic is made as `sharp_remap` does (as sharp, a fifth of the time),
    from the part of the image the kept pixels read only, each pixel sharpened as far as it moves
    (SHARPEN_FROM: a face drawn where the image has it, as `render --onto` and `dub` draw most of
    it, is read as it is); Lanczos (a photo's) as it is."""
    if interpolation != cv2.INTER_CUBIC:
        return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)
    used = keep > 0
    if not used.any():
        return np.zeros(map_x.shape + image.shape[2:], image.dtype)
    height, width = image.shape[:2]
    xs, ys = map_x[used], map_y[used]
    x0, y0 = np.clip([int(np.floor(xs.min())) - 2, int(np.floor(ys.min())) - 2], 0, [width - 1, height - 1])
    x1, y1 = np.clip([int(np.ceil(xs.max())) + 3, int(np.ceil(ys.max())) + 3], [x0 + 1, y0 + 1], [width, height])
    part, read_x, read_y = image[y0:y1, x0:x1], map_x - np.float32(x0), map_y - np.float32(y0)
    plain = cv2.remap(part, read_x, read_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # how far each pixel reads from where it lies (the maps minus the box's own pixel grid)
    rows, columns = _pixel_grid(map_x.shape)
    move = cv2.magnitude(map_x - (columns + np.float32(origin[0])), map_y - (rows + np.float32(origin[1])))
    share = np.minimum(move * np.float32(1 / SHARPEN_FROM), np.float32(1))
    if not (share[used] > 0.02).any():  # read where it is (within 0.01 px): nothing to sharpen
        return plain
    sharp = sharp_remap(part, read_x, read_y)
    return cv2.blendLinear(sharp, plain, share, 1 - share)


def _throat(mouth: np.ndarray) -> np.ndarray:
    """(H, W) float32 share of MOUTH_SHADE across the mouth's opening (uint8 mask): 1 at its edge,
    falling to MOUTH_DEEP / MOUTH_SHADE at its middle (a smoothstep of the distance from the edge
    over the largest). Filled flat, the gap between a photo's teeth read as a painted band."""
    distance = cv2.distanceTransform(mouth, cv2.DIST_L2, 3)
    share = distance / max(float(distance.max()), 1e-6)
    share = share * share * (3 - 2 * share)
    return (1 - (1 - MOUTH_DEEP / MOUTH_SHADE) * share).astype(np.float32)


def _soften_edge(colours: np.ndarray, mouth: np.ndarray) -> None:
    """Anti-alias the mouth opening's edge in place: the pixels next to it either way take a
    slightly blurred colour (the rasterized lips end in stair steps, which read as noise: the
    lips were twice as rough as the real ones in the spectrum's top band)."""
    ys, xs = np.nonzero(mouth)
    y0, y1 = max(ys.min() - 4, 0), min(ys.max() + 5, mouth.shape[0])
    x0, x1 = max(xs.min() - 4, 0), min(xs.max() + 5, mouth.shape[1])
    part = mouth[y0:y1, x0:x1]
    kernel = np.ones((3, 3), np.uint8)
    edge = (cv2.dilate(part, kernel) != cv2.erode(part, kernel))
    box = colours[y0:y1, x0:x1]
    box[edge] = cv2.GaussianBlur(box, (0, 0), MOUTH_EDGE_SIGMA)[edge]


def skin_weights(mean_shape: np.ndarray) -> np.ndarray:
    """(V,) per vertex: 0 on and near the lips (the new expression changes them), rising to 1 on
    the cheeks, nose and forehead, where the background frame's own skin is kept."""
    frontal = mean_shape[:, :2].astype(np.float64)
    right, left = topology.eye_centres(frontal)
    eye_distance = np.linalg.norm(left - right)
    lips = frontal[topology.lip_indices()]
    distance = np.linalg.norm(frontal[:, None] - lips[None], axis=-1).min(1) / max(eye_distance, 1e-9)
    ramp = np.clip((distance - SKIN_RAMP[0]) / (SKIN_RAMP[1] - SKIN_RAMP[0]), 0, 1)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)


def _seen_in_source(vertices: np.ndarray, source: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(F,) per triangle: 1 where the source image sees it about as large as it is drawn, fading
    to 0 where the source sees it edge-on or from behind (its skin there is smeared or hidden)."""
    drawn, seen = screen_cross(vertices, triangles), screen_cross(source, triangles)
    ratio = np.divide(seen, drawn, out=np.zeros_like(seen), where=np.abs(drawn) > 1e-6)
    return np.clip((ratio - SKIN_STRETCH[0]) / (SKIN_STRETCH[1] - SKIN_STRETCH[0]), 0, 1).astype(np.float32)


def _match_light(colours: np.ndarray, background: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Scale each channel so the face's mean colour matches the background frame's face.

    Args:
        colours: (H, W, 3) float32; background: (H, W, 3) uint8; covered: (H, W) uint8 0/1.
    """
    inner = cv2.erode(covered, np.ones((9, 9), np.uint8))
    if cv2.countNonZero(inner) < 50:
        return colours
    face_light = np.array(cv2.mean(background, inner)[:3])
    own_light = np.array(cv2.mean(colours, inner)[:3])
    gain = face_light / np.maximum(own_light, 1.0)
    return colours * np.clip(gain, *GAIN_LIMITS).astype(np.float32)


def _feather(mask: np.ndarray) -> np.ndarray:
    """(H, W) float32 blend weight from a bool or 0/1 mask: shrunk, then softened."""
    shrunk = cv2.erode(mask.astype(np.uint8, copy=False), np.ones((2 * ERODE_PX + 1,) * 2, np.uint8)).astype(np.float32)
    return cv2.GaussianBlur(shrunk, (0, 0), FEATHER_SIGMA)
