"""The peer for SparseEncoder.fit: a plain PyTorch implementation of the same recipe
(TopK, normalized MSE, Matryoshka prefixes, aux-K on dead latents, unit-norm decoder rows with
the parallel gradient component removed, Adam, b_dec at the median, encoder = decoder^T).
Benchmark-only: the tests never import torch."""
from __future__ import annotations

import numpy as np
import torch


class TorchTopKSAE:
    def __init__(self, W_encT, b_enc, W_dec, b_dec, *, k, prefixes, lr, aux_k, aux_coef, dead_after):
        as_param = lambda a: torch.nn.Parameter(torch.tensor(np.asarray(a, np.float32)))
        self.W_encT, self.b_enc = as_param(W_encT), as_param(b_enc)
        self.W_dec, self.b_dec = as_param(W_dec), as_param(b_dec)
        self.k, self.prefixes = k, list(prefixes)
        self.aux_k, self.aux_coef, self.dead_after = aux_k, aux_coef, dead_after
        self.silent = torch.zeros(W_dec.shape[0], dtype=torch.int64)
        self.opt = torch.optim.Adam([self.W_encT, self.b_enc, self.W_dec, self.b_dec], lr=lr)

    def step(self, x: torch.Tensor, norm: float) -> float:
        pre = (x - self.b_dec) @ self.W_encT.T + self.b_enc
        vals, idx = torch.topk(pre, self.k, dim=1)
        z = torch.zeros_like(pre).scatter(1, idx, torch.relu(vals))
        losses = []
        for p in self.prefixes:
            xhat = z[:, :p] @ self.W_dec[:p] + self.b_dec
            losses.append(((xhat - x) ** 2).sum(1).mean() / norm)
        loss = torch.stack(losses).mean()
        total = loss
        dead = self.silent >= self.dead_after
        if self.aux_k > 0 and bool(dead.any()):
            e = (x - xhat).detach()
            ak = min(self.aux_k, int(dead.sum()))
            masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
            avals, aidx = torch.topk(masked, ak, dim=1)
            za = torch.zeros_like(pre).scatter(1, aidx, torch.relu(avals))
            ehat = za @ self.W_dec
            denom = (e ** 2).sum()
            if float(denom) > 0:
                total = total + self.aux_coef * ((ehat - e) ** 2).sum() / denom
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        with torch.no_grad():
            g = self.W_dec.grad
            g -= (g * self.W_dec).sum(1, keepdim=True) * self.W_dec
        self.opt.step()
        with torch.no_grad():
            self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
            fired = (z > 0).any(0)
            self.silent = torch.where(fired, torch.zeros_like(self.silent), self.silent + x.shape[0])
        return float(loss.detach())

    def normalized_mse(self, X: torch.Tensor, mean: torch.Tensor) -> float:
        with torch.no_grad():
            pre = (X - self.b_dec) @ self.W_encT.T + self.b_enc
            vals, idx = torch.topk(pre, self.k, dim=1)
            z = torch.zeros_like(pre).scatter(1, idx, torch.relu(vals))
            xhat = z @ self.W_dec + self.b_dec
            return float(((xhat - X) ** 2).sum() / ((X - mean) ** 2).sum())
