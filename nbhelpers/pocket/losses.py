"""The CALM training objective for Pocket TTS (Rouard et al., "Continuous Audio Language Models",
arXiv 2509.06926), written for the package's own heads (``pocket_tts.modules.mlp.SimpleMLPAdaLN``).

The backbone emits one conditioning vector per frame; the head maps noise to the next normalised Mimi latent.

* LSD head (two time inputs s, t): a flow map ``X_{s,t}(x) = x + (t - s) * v(c, s, t, x)`` from noise
  (time 0) to data (time 1), trained by Lagrangian self-distillation (Boffi et al., arXiv 2505.18825):
  - diagonal term: ``v(c, t, t, x_t)`` regresses the flow-matching velocity ``x1 - x0`` on
    ``x_t = (1 - t) x0 + t x1``;
  - self-distillation term, on a configurable share of steps: the time derivative of the flow map, taken
    with a Jacobian-vector product, must equal the (stop-gradient) instantaneous velocity where the map
    lands: ``v(c,s,t,x_s) + (t - s) d/dt v(c,s,t,x_s) = sg(v(c, t, t, X_{s,t}(x_s)))``.
  One-step sampling is then ``x0 + v(c, 0, 1, x0)`` (``pocket_tts.models.flow_lm.lsd_decode``).
* Flow-matching head (one time input): the same diagonal regression, sampled with Euler steps.
* Diagonal times are drawn logit-normal (a normal passed through a sigmoid), which concentrates training
  on the middle of the path; distillation pairs (s, t) are uniform on s < t so the one-step jump (0, 1)
  is covered; EOS is a per-frame binary cross-entropy weighted 0.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _interpolate(noise: torch.Tensor, target: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (1 - t) * noise + t * target


def diagonal_loss(flow_net, cond: torch.Tensor, target: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
                  flow_type: str = "lsd") -> torch.Tensor:
    """Per-row flow-matching error of the head's instantaneous velocity (LSD: s = t)."""
    x_t = _interpolate(noise, target, t)
    v = flow_net(cond, t, t, x_t) if flow_type == "lsd" else flow_net(cond, t, x_t)
    return (v - (target - noise)).pow(2).mean(-1)


def self_distillation_loss(flow_net, cond: torch.Tensor, target: torch.Tensor, noise: torch.Tensor,
                           s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-row Lagrangian self-distillation error (s < t): the flow map's time derivative (jvp in t) against
    the stop-gradient velocity at the point the map reaches."""
    x_s = _interpolate(noise, target, s)

    def flow_map_velocity(tt: torch.Tensor) -> torch.Tensor:
        return flow_net(cond, s, tt, x_s)

    v_st, dv_dt = torch.func.jvp(flow_map_velocity, (t,), (torch.ones_like(t),))
    lands = x_s + (t - s) * v_st
    with torch.no_grad():
        teacher = flow_net(cond.detach(), t, t, lands.detach())
    return (v_st + (t - s) * dv_dt - teacher).pow(2).mean(-1)


def head_draws(rows: int, dim: int, multiplier: int = 1) -> dict[str, torch.Tensor]:
    """The random numbers the head loss of ``rows`` frames uses, drawn from torch's global RNG: noise
    [multiplier, rows, dim], standard-normal time seeds [multiplier, rows] (made logit-normal by the loss) and
    uniform distillation pairs [2, multiplier, rows]. Drawn per utterance when a batch is made, so a batch split
    into micro-batches (gradient accumulation) draws exactly the numbers the whole batch would."""
    return {"noise": torch.randn(multiplier, rows, dim), "time": torch.randn(multiplier, rows),
            "pair": torch.rand(2, multiplier, rows)}


def head_loss(flow_net, cond: torch.Tensor, target: torch.Tensor, draws: dict[str, torch.Tensor], *,
              flow_type: str = "lsd", distill: bool = False, distill_weight: float = 1.0, time_mean: float = 0.0,
              time_std: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean head loss over rows (cond [N, C], target [N, D]) and its parts as floats, with the noise and times of
    ``draws`` (:func:`head_draws` layout for N rows).

    ``distill`` adds the self-distillation term (LSD heads only) on this step; a ``draws`` multiplier M > 1 repeats
    every row with fresh noise and times (CALM's head batch multiplier: more head samples per backbone pass).
    """
    if flow_type not in ("lsd", "flow_matching"):
        raise ValueError(f"cannot train a {flow_type!r} head: use 'lsd' or 'flow_matching'")
    multiplier = draws["noise"].shape[0]
    if multiplier > 1:
        cond, target = cond.repeat(multiplier, 1), target.repeat(multiplier, 1)
    n = target.shape[0]
    noise = draws["noise"].reshape(n, -1).to(target)
    t = torch.sigmoid(time_mean + time_std * draws["time"].reshape(n, 1).to(target))  # logit-normal times
    diag = diagonal_loss(flow_net, cond, target, noise, t, flow_type).mean()
    parts = {"flow": float(diag.detach())}
    loss = diag
    if distill and flow_type == "lsd":
        pair = draws["pair"].reshape(2, n, 1).to(target)  # (s, t) uniform on the triangle s < t: one-step
        s, t2 = pair.min(0).values, pair.max(0).values     # sampling needs the far pairs near (0, 1) too
        sd = self_distillation_loss(flow_net, cond, target, noise, s, t2).mean()
        loss = loss + distill_weight * sd
        parts["distill"] = float(sd.detach())
    return loss, parts


def eos_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean binary cross-entropy of the per-frame end-of-speech logits."""
    bce = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    return (bce * mask).sum() / mask.sum().clamp(min=1)
