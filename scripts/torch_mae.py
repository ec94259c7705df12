"""PyTorch eager baseline for the MAE step of issue 40, at the shape of the train_step bench's
`mae_vision`: 256 Fashion-MNIST-sized pictures (28 x 28, one channel) in patches of 4 (49),
75 % hidden (12 visible); a ViT encoder 128 wide, 4 pre-norm layers of 4 heads, GELU
feed-forward 512, no dropout, [CLS]; MAE's decoder 64 wide, one layer of 4 heads, feed-forward
256; loss on per-patch normalised pixels of the hidden patches; AdamW; f32. Prints the median
step time and images/s.

    python scripts/torch_mae.py [--steps 20] [--threads 2]

Needs torch only (not a dependency of the crate; install it in a throwaway venv). The pixels
are random: a step's cost does not depend on them.
"""
import argparse
import torch
from torch_steps import time_steps
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=256)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

SIDE, PATCH, WIDTH, LAYERS, HEADS = 28, 4, 128, 4, 4
DEC_WIDTH, DEC_LAYERS, DEC_HEADS, RATIO = 64, 1, 4, 0.75
GRID = SIDE // PATCH
PATCHES, PIXELS = GRID * GRID, PATCH * PATCH
KEEP = int(PATCHES * (1 - RATIO))


def stack(width, layers, heads):
    layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width),
                                 enable_nested_tensor=False)


class Mae(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(PIXELS, WIDTH)
        self.cls = nn.Parameter(torch.zeros(1, 1, WIDTH))
        self.pos = nn.Parameter(torch.zeros(1, PATCHES + 1, WIDTH), requires_grad=False)
        self.encoder = stack(WIDTH, LAYERS, HEADS)
        self.decoder_embed = nn.Linear(WIDTH, DEC_WIDTH)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, DEC_WIDTH))
        self.dec_pos = nn.Parameter(torch.zeros(1, PATCHES + 1, DEC_WIDTH), requires_grad=False)
        self.decoder = stack(DEC_WIDTH, DEC_LAYERS, DEC_HEADS)
        self.pred = nn.Linear(DEC_WIDTH, PIXELS)

    def forward(self, images):
        n = images.shape[0]
        patches = images.reshape(n, GRID, PATCH, GRID, PATCH).permute(0, 1, 3, 2, 4)
        patches = patches.reshape(n, PATCHES, PIXELS)
        # MAE's random masking: shuffle by noise, keep the first KEEP.
        shuffle = torch.rand(n, PATCHES).argsort(dim=1)
        restore = shuffle.argsort(dim=1)
        keep = shuffle[:, :KEEP]
        x = self.patch_embed(patches) + self.pos[:, 1:]
        x = x.gather(1, keep.unsqueeze(-1).expand(-1, -1, WIDTH))
        x = torch.cat([(self.cls + self.pos[:, :1]).expand(n, -1, -1), x], dim=1)
        x = self.decoder_embed(self.encoder(x))
        hidden = self.mask_token.expand(n, PATCHES - KEEP, -1)
        y = torch.cat([x[:, 1:], hidden], dim=1)
        y = y.gather(1, restore.unsqueeze(-1).expand(-1, -1, DEC_WIDTH))
        y = torch.cat([x[:, :1], y], dim=1) + self.dec_pos
        pred = self.pred(self.decoder(y))[:, 1:]
        mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
        target = (patches - mean) / (var + 1e-6).sqrt()
        mask = torch.ones(n, PATCHES)
        mask[:, :KEEP] = 0
        mask = mask.gather(1, restore)
        return (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()


model = Mae().train()
optim = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
images = torch.randn(args.batch, 1, SIDE, SIDE)

time_steps(lambda: model(images), optim, args.warmup, args.steps, args.batch, "images", args.threads)
