"""Oracle for slt's do_aug augmentations; run with Debian's /usr/bin/python3
(python3-torch, python3-torchvision).

  augment_oracle.py FRAMES_PT OUT_PT

FRAMES_PT is a fixture of decoded frames ({"frames_thwc_u8": [T, H, W, 3]}).
OUT_PT gets a dict of tensors:
  input                          uint8 [N, 3, H, W]: the fixture's frames, a
                                 low-contrast copy and one with a flat channel
  op/<name>/<bin>/<sign>         torchvision.transforms.functional's output for
                                 RandAugment's op at that bin, sign +1 or -1
  magnitude/<name>/<bin>         the unsigned magnitude RandAugment uses there
  randaug/<seed>                 RandAugment(num_ops=4, magnitude=7) after
                                 torch.manual_seed(seed)
  randaug/<seed>/ops             float64 [4, 2]: (op index, signed magnitude)
                                 of each op it applied
The operations see the frames as the reference's VideoDataset hands them over:
an [N, H, W, 3] tensor permuted to [N, 3, H, W] (channels last in memory).
One thread, so that reductions sum in the same order as slt's test.
"""
import sys

import torch
import torchvision.transforms.autoaugment as autoaugment
from torchvision.transforms import InterpolationMode

torch.set_num_threads(1)

frames = torch.load(sys.argv[1])["frames_thwc_u8"].permute(0, 3, 1, 2).contiguous()
low_contrast = (frames[:1].int() // 3 + 60).to(torch.uint8)
flat_channel = frames[-1:].clone()
flat_channel[:, 0] = 77
images = torch.cat([frames, low_contrast, flat_channel]).contiguous()
height, width = images.shape[-2:]
as_decoded = images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)

out = {"input": images}
augmenter = autoaugment.RandAugment(num_ops=4, magnitude=7)
space = augmenter._augmentation_space(31, (height, width))
for name, (magnitudes, signed) in space.items():
    if name == "Identity":
        continue
    for bin_index in (7, 30):
        magnitude = float(magnitudes[bin_index].item()) if magnitudes.ndim > 0 else 0.0
        out[f"magnitude/{name}/{bin_index}"] = torch.tensor(magnitude, dtype=torch.float64)
        for sign in (1, -1) if signed else (1,):
            out[f"op/{name}/{bin_index}/{sign}"] = autoaugment._apply_op(
                as_decoded, name, sign * magnitude, interpolation=InterpolationMode.NEAREST, fill=None
            )

applied = []
original_apply_op = autoaugment._apply_op


def logging_apply_op(img, op_name, magnitude, interpolation, fill):
    applied.append((list(space.keys()).index(op_name), magnitude))
    return original_apply_op(img, op_name, magnitude, interpolation=interpolation, fill=fill)


autoaugment._apply_op = logging_apply_op
for seed in range(16):
    applied.clear()
    torch.manual_seed(seed)
    out[f"randaug/{seed}"] = augmenter(as_decoded)
    out[f"randaug/{seed}/ops"] = torch.tensor(applied, dtype=torch.float64)

torch.save({k: v.contiguous() for k, v in out.items()}, sys.argv[2])
