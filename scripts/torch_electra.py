"""ELECTRA with Hugging Face's models, as a reference for `pretrain --objective electra`.

Trains HF `ElectraForMaskedLM` (generator) and `ElectraForPreTraining` (discriminator),
sharing the embeddings as the reference does, on the bundled Brown corpus with the crate's
tokenizer and the `mini` preset's shapes and defaults (4 layers of width 256, generator 1/4
wide, batches of 16 x 128 tokens, AdamW at 1e-3 with 10 % warmup then linear decay, global
norm clipped to 1, λ = 50, ELECTRA's masking: 15 % of the tokens, 85 % of those [MASK], the
rest kept, replacements sampled at temperature 1). Prints the validation discriminator
accuracy against the all-"original" baseline, and its AUC, every --valid-every steps.

Needs `torch`, `transformers` and `tokenizers` (not dependencies of the crate), e.g. in a
throwaway venv:

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch transformers
    /tmp/torchenv/bin/python scripts/torch_electra.py --steps 300
"""

import argparse
import math
import pathlib
import random

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

ROOT = pathlib.Path(__file__).resolve().parent.parent


def segments(paths, tokenizer, seq_len):
    """Each document's ids packed into [CLS] ... [SEP] segments of at most seq_len."""
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    out = []
    for path in paths:
        ids = tokenizer.encode(path.read_text(), add_special_tokens=False).ids
        for start in range(0, len(ids), seq_len - 2):
            chunk = ids[start : start + seq_len - 2]
            if len(chunk) >= 8:
                out.append([cls] + chunk + [sep])
    return out


def batch_of(rows, pad):
    """Pads rows to one tensor; returns ids and the mask of real tokens."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    return ids, ids != pad


def electra_mask(ids, real, special, mask_id, rate, generator):
    """ELECTRA's masking: `rate` of the non-special real tokens; 85 % become [MASK]."""
    candidates = real & ~torch.isin(ids, special)
    draw = torch.rand(ids.shape, generator=generator)
    chosen = candidates & (draw < rate)
    masked = ids.clone()
    to_mask = chosen & (torch.rand(ids.shape, generator=generator) < 0.85)
    masked[to_mask] = mask_id
    return masked, chosen


def step(gen, disc, ids, real, args, special, mask_id, generator):
    """One forward pass: returns the loss and the detection outputs."""
    masked, chosen = electra_mask(ids, real, special, mask_id, args.mask_rate, generator)
    gen_logits = gen(input_ids=masked, attention_mask=real).logits[chosen]
    gen_loss = F.cross_entropy(gen_logits, ids[chosen])
    with torch.no_grad():
        probs = F.softmax(gen_logits / args.temperature, dim=-1)
        sampled = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    corrupted = ids.clone()
    corrupted[chosen] = sampled
    labels = (corrupted != ids).float()
    logits = disc(input_ids=corrupted, attention_mask=real).logits
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    disc_loss = (bce * real).sum() / real.sum()
    gen_right = (gen_logits.argmax(-1) == ids[chosen]).float().sum()
    loss = gen_loss + args.disc_weight * disc_loss
    return loss, logits[real], labels[real], (gen_right, chosen.sum())


def auc(scores, labels):
    """Mann-Whitney AUC of scores for positives against negatives."""
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    pos = labels.sum()
    neg = len(labels) - pos
    return float((ranks[labels > 0.5].sum() - pos * (pos + 1) / 2) / (pos * neg))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--disc-weight", type=float, default=50.0)
    p.add_argument("--generator-size", type=float, default=0.25)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--mask-rate", type=float, default=0.15)
    p.add_argument("--valid-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    tokenizer = Tokenizer.from_file(str(ROOT / "data" / "tokenizer.json"))
    paths = sorted((ROOT / "data" / "brown").glob("*.txt"))
    random.Random(args.seed).shuffle(paths)
    valid = segments(paths[:20], tokenizer, args.seq_len)
    train = segments(paths[20:], tokenizer, args.seq_len)
    pad, mask_id = tokenizer.token_to_id("[PAD]"), tokenizer.token_to_id("[MASK]")
    special = torch.tensor([tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")])
    print(f"{len(train)} train / {len(valid)} validation segments")

    hidden = 256
    width = max(1, round(hidden * args.generator_size))
    common = dict(
        vocab_size=tokenizer.get_vocab_size(),
        embedding_size=hidden,
        num_hidden_layers=4,
        max_position_embeddings=512,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    disc = ElectraForPreTraining(
        ElectraConfig(hidden_size=hidden, num_attention_heads=4, intermediate_size=4 * hidden, **common)
    )
    gen = ElectraForMaskedLM(
        ElectraConfig(hidden_size=width, num_attention_heads=max(1, width // 64), intermediate_size=4 * width, **common)
    )
    # Shared embeddings (token, position, segment, LayerNorm) as in the reference; the
    # generator's MLM head stays tied to the shared token table.
    gen.electra.embeddings = disc.electra.embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    params = list({id(q): q for q in list(gen.parameters()) + list(disc.parameters())}.values())
    no_decay = [q for q in params if q.dim() < 2]
    decay = [q for q in params if q.dim() >= 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.999),
        eps=1e-6,
    )
    warmup = round(0.1 * args.steps)

    def lr_at(s):
        if s < warmup:
            return (s + 1) / warmup
        return max(0.0, (args.steps - s) / max(1, args.steps - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    order = []
    for s in range(args.steps):
        gen.train()
        disc.train()
        if len(order) < args.batch_size:
            order += random.Random(args.seed + s).sample(range(len(train)), len(train))
        rows, order = [train[i] for i in order[: args.batch_size]], order[args.batch_size :]
        ids, real = batch_of(rows, pad)
        loss, _, _, _ = step(gen, disc, ids, real, args, special, mask_id, generator)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if (s + 1) % args.valid_every == 0 or s + 1 == args.steps:
            gen.eval()
            disc.eval()
            scores, labels, right, targets = [], [], 0.0, 0
            valid_gen = torch.Generator().manual_seed(args.seed + 1)
            with torch.no_grad():
                for i in range(0, min(len(valid), 256), args.batch_size):
                    ids, real = batch_of(valid[i : i + args.batch_size], pad)
                    _, sc, lb, (r, n) = step(gen, disc, ids, real, args, special, mask_id, valid_gen)
                    scores.append(sc)
                    labels.append(lb)
                    right, targets = right + float(r), targets + int(n)
            sc, lb = torch.cat(scores), torch.cat(labels)
            acc = float(((sc > 0).float() == lb).float().mean())
            base = 1 - float(lb.mean())
            print(
                f"step {s + 1}: loss {float(loss.detach()):.3f} | valid disc_acc {acc:.4f} "
                f"baseline {base:.4f} disc_auc {auc(sc, lb):.3f} gen_acc {right / targets:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
