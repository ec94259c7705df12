"""PyTorch eager baseline for issue 9: HF BertForMaskedLM trained at the reference configuration
(vocab 8192, hidden 256, 4 layers, 4 heads, ffn 1024, seq 128, batch 16, f32, dropout 0.1,
AdamW, MLM 15 %), on this machine's threads. Prints the median step time and tokens/s.

    python scripts/torch_baseline.py [--steps 30] [--threads 2]

Needs torch and transformers (not a dependency of the crate; install them in a throwaway venv).
"""
import argparse
import torch
from torch_steps import time_steps
from transformers import BertConfig, BertForMaskedLM

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=30)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--threads", type=int, default=2)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

config = BertConfig(vocab_size=8192, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                    intermediate_size=1024, max_position_embeddings=128)
model = BertForMaskedLM(config).train()
optim = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
batch, seq = 16, 128
ids = torch.randint(5, 8192, (batch, seq))
labels = torch.full_like(ids, -100)
masked = torch.rand(batch, seq) < 0.15
labels[masked] = ids[masked]
inputs = ids.clone()
inputs[masked] = 4  # [MASK]

time_steps(lambda: model(input_ids=inputs, labels=labels).loss, optim, args.warmup, args.steps,
           batch * seq, "tokens", args.threads)
