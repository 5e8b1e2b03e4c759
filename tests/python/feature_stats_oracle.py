"""Checks slt-data feature-stats against PyTorch: per-dimension mean and
population std over every frame of the manifest's feature files.
usage: feature_stats_oracle.py STATS.pt MANIFEST.tsv FEATURES_DIR"""
import sys

import torch

stats_path, manifest, features = sys.argv[1:4]
stats = torch.load(stats_path)
names = [line.split("\t")[0] for line in open(manifest) if line.strip()]
frames = torch.cat([torch.load(f"{features}/{n[:5]}/{n.replace('.mp4', '.pt')}") for n in names]).double()
mean, std = frames.mean(0), frames.std(0, unbiased=False)
ok = torch.allclose(stats["mean"].double(), mean, atol=1e-5) and torch.allclose(stats["std"].double(), std, atol=1e-5)
print("ok" if ok else f"mismatch: max |mean| diff {(stats['mean'] - mean).abs().max()}, std {(stats['std'] - std).abs().max()}")
