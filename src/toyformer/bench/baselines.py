"""Plain-PyTorch references: the models of R0, R1 and R4 written the way the reference
experiments were, with ``nn.TransformerEncoder`` / ``nn.Transformer``, a per-sample
``torch.utils.data.Dataset`` and a ``DataLoader`` (one Python call per example, default
collation), Adam, and a hand-written training step. The throughput benchmark races toyformer
against these on the same model, so everything here is deliberately the notebook way.

>>> ref = BASELINES["r4"](seed=0)          # doctest: +SKIP
>>> ref.train_steps(10)                    # doctest: +SKIP  # 10 optimisation steps, 1,250 samples
1250
"""

from __future__ import annotations

import math
import random

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

# ---------------------------------------------------------------------------------------------
# R0: count the ones. nn.TransformerEncoder of 12 post-LN layers, d 32, 4 heads, library defaults
# (feed-forward 2048, dropout 0.1), no positional encoding, 10 x 32 outputs flattened into an MLP
# 320-64-16-20; Adam 1e-3, batch 32, fresh samples every step.


class CountOnesDataset(Dataset):
    """``n`` ones then ``10 - n`` zeros, ``n`` uniform in 1..10; label ``n - 1`` (20 classes)."""

    def __init__(self, size: int, seed: int = 0, length: int = 10):
        self.size, self.length, self.rng = size, length, random.Random(seed)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, idx):
        n = self.rng.randint(1, self.length)
        return torch.tensor([1] * n + [0] * (self.length - n)), n - 1


class CountOnesModel(nn.Module):
    def __init__(self, d_model: int = 32, n_layers: int = 12, length: int = 10):
        super().__init__()
        self.embed = nn.Embedding(2, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead=4, batch_first=True)  # ff 2048, dropout 0.1, post-LN
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(length * d_model, 64), nn.ReLU(),
                                  nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 20))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 10] -> [B, 20]
        return self.head(self.encoder(self.embed(x)))


# ---------------------------------------------------------------------------------------------
# R1: memorise a 30 x 30 table. Causal decoder-only (nn.TransformerEncoder + causal mask), token
# embedding, no positional encoding, d 16, 2 heads, ff 64, dropout 0; padded variant: a zero
# vector appended as a third position, the answer read there. Adam 1e-2, batch 300.


class TableDataset(Dataset):
    def __init__(self, table: torch.Tensor, size: int, seed: int = 0):
        self.table, self.size, self.rng = table, size, random.Random(seed)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, idx):
        n = self.table.shape[0]
        i, j = self.rng.randrange(n), self.rng.randrange(n)
        return torch.tensor([i, j]), self.table[i, j]


class TableModel(nn.Module):
    def __init__(self, size: int = 30, d_model: int = 16, n_layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(size, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead=2, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.body = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 2] -> [B, size]
        h = self.embed(x)
        h = torch.cat([h, torch.zeros(h.shape[0], 1, h.shape[2], device=h.device)], 1)  # the zero-vector slot
        mask = nn.Transformer.generate_square_subsequent_mask(3, device=h.device)
        return self.out(self.body(h, mask=mask, is_causal=True)[:, -1])


# ---------------------------------------------------------------------------------------------
# R4: learning to calculate. nn.Transformer 2+2 layers, d 64, 4 heads, ff 64, dropout 0.01,
# embedding + sinusoidal encoding + dropout, padding and causal masks, teacher forcing; 10,000
# fixed formulas held as strings and tokenised per example; Adam 1e-3, batch 125, shuffled.

CHARS = "0123456789+-"
PAD, BOS, EOS = 0, 1, 2
CHAR_ID = {c: i + 3 for i, c in enumerate(CHARS)}


def formulas(n: int, complexity: int = 3, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (question, answer) strings such as ``("-42+970", "928")``."""
    rng = random.Random(seed)
    top, out = 10**complexity, []
    for _ in range(n):
        a, b = rng.randint(-top, top), rng.randint(0, top)
        op = rng.choice("+-")
        out.append((f"{a}{op}{b}", str(a + b if op == "+" else a - b)))
    return out


def encode(text: str, width: int) -> list[int]:
    ids = [CHAR_ID[c] for c in text] + [EOS]
    return (ids + [PAD] * width)[:width]


class FormulaDataset(Dataset):
    def __init__(self, pairs: list[tuple[str, str]], complexity: int = 3):
        self.pairs, self.c = pairs, complexity

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, idx):
        q, a = self.pairs[idx]
        return torch.tensor(encode(q, 2 * self.c + 3)), torch.tensor(encode(a, self.c + 2))


class PositionalEncoding(nn.Module):
    pe: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, d_model: int, dropout: float, max_len: int = 64):
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, d]
        return self.drop(x + self.pe[: x.shape[1]])


class CalculatorModel(nn.Module):
    def __init__(self, d_model: int = 64, dropout: float = 0.01):
        super().__init__()
        vocab = len(CHARS) + 3
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = PositionalEncoding(d_model, dropout)
        self.transformer = nn.Transformer(d_model, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                                          dim_feedforward=64, dropout=dropout, batch_first=True)
        self.out = nn.Linear(d_model, vocab)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:  # -> [B, T, V]
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], device=src.device)
        h = self.transformer(self.pos(self.embed(src)), self.pos(self.embed(tgt_in)), tgt_mask=tgt_mask,
                             src_key_padding_mask=src == PAD, tgt_key_padding_mask=tgt_in == PAD,
                             memory_key_padding_mask=src == PAD)
        return self.out(h)


# ---------------------------------------------------------------------------------------------


class Baseline:
    """A model, its optimiser and an endless ``DataLoader``; ``train_steps(n)`` runs ``n``
    optimisation steps and returns the number of samples processed."""

    name = "?"

    def __init__(self, model: nn.Module, dataset: Dataset, batch_size: int, lr: float, shuffle: bool = False,
                 device: str = "cpu"):
        self.device = torch.device(device)
        self.model, self.dataset, self.batch_size, self.shuffle = model.to(self.device), dataset, batch_size, shuffle
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)
        self.loss_fn = nn.CrossEntropyLoss()
        self.batches = self._endless()
        self.model.train()

    def _endless(self):
        while True:  # a new epoch whenever the loader runs out
            yield from DataLoader(self.dataset, batch_size=self.batch_size, shuffle=self.shuffle)

    def next_batch(self) -> list[torch.Tensor]:
        return [t.to(self.device) for t in next(self.batches)]

    def loss(self, batch) -> torch.Tensor:
        x, y = batch
        return self.loss_fn(self.model(x), y)

    def train_steps(self, n: int) -> int:
        samples = 0
        for _ in range(n):
            batch = self.next_batch()
            loss = self.loss(batch)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            samples += len(batch[0])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return samples


class R0Baseline(Baseline):
    name = "r0"

    def __init__(self, seed: int = 0, device: str = "cpu"):
        torch.manual_seed(seed)
        super().__init__(CountOnesModel(), CountOnesDataset(10**9, seed), batch_size=32, lr=1e-3, device=device)


class R1Baseline(Baseline):
    name = "r1"

    def __init__(self, seed: int = 0, device: str = "cpu"):
        torch.manual_seed(seed)
        table = torch.randint(30, (30, 30))
        super().__init__(TableModel(), TableDataset(table, 10**9, seed), batch_size=300, lr=1e-2, device=device)


class R4Baseline(Baseline):
    name = "r4"

    def __init__(self, seed: int = 0, device: str = "cpu", train_size: int = 10_000):
        torch.manual_seed(seed)
        dataset = FormulaDataset(formulas(train_size, seed=seed))
        super().__init__(CalculatorModel(), dataset, batch_size=125, lr=1e-3, shuffle=True, device=device)
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)

    def loss(self, batch) -> torch.Tensor:
        src, tgt = batch
        # shifted right behind <bos>
        tgt_in = torch.cat([torch.full((len(tgt), 1), BOS, device=tgt.device), tgt[:, :-1]], 1)
        logits = self.model(src, tgt_in)
        return self.loss_fn(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))


BASELINES = {"r0": R0Baseline, "r1": R1Baseline, "r4": R4Baseline}
