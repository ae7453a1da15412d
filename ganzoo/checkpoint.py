"""Reading ganzoo checkpoints safely, without the training stack.

Checkpoints are Lightning checkpoints with a ``ganzoo`` section (generator config,
data shape, generator step, random states). They are read with
``torch.load(weights_only=True)``: tensors and plain containers only, no code. The
generator a checkpoint describes is built from an allow-list (``build_generator``), never
by handing its config to Hydra: a checkpoint is data and does not choose what code runs.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch

from ganzoo.errors import CheckpointError  # noqa: F401  (defined without torch)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways, one message
        raise CheckpointError(_unreadable(path, exc)) from exc
    if not isinstance(ckpt, dict) or "ganzoo" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a ganzoo checkpoint")
    return ckpt


def _unreadable(path: Path, exc: Exception) -> str:
    """One line for a file torch.load(weights_only=True) refused. torch's own message is a
    page of advice (ending in "load with weights_only=False", i.e. run the file's code);
    keep only what names the problem."""
    text = str(exc)
    code = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if code:  # a pickled class or function: loading it would run code the file chooses
        return (f"{path} holds more than tensors and plain data: its pickle would call "
                f"{code.group(1)} when loaded; ganzoo loads checkpoints with "
                "weights_only=True and refuses it")
    detail = text.split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return f"{path} is not a readable checkpoint (truncated or not a PyTorch file: {first})"


def check_compatible(ckpt: dict, state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse, in one line, a checkpoint whose weights do not fit these networks."""
    saved = ckpt["state_dict"]
    missing = sorted(set(state_dict) - set(saved))
    unexpected = sorted(set(saved) - set(state_dict))
    wrong = sorted(k for k in set(saved) & set(state_dict)
                   if tuple(saved[k].shape) != tuple(state_dict[k].shape))
    if missing or unexpected or wrong:
        detail = (f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
                  if unexpected else f"{wrong[0]} has shape {tuple(saved[wrong[0]].shape)}, "
                  f"expected {tuple(state_dict[wrong[0]].shape)}")
        raise CheckpointError(f"{path} was trained with another architecture ({detail})")


def sampling_record(generator, data, prior=None) -> dict:
    """What a checkpoint keeps for sampling without the training stack: the generator's
    config (``_target_`` and arguments, resolved), its latent prior's (``ganzoo.priors``)
    and the data's name and shape.

    Built by Hydra with ``_recursive_: false`` (conf/model/base.yaml), so the
    generator's node arrives as config, not as a network.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf

    def plain(node):
        return OmegaConf.to_container(node, resolve=True) \
            if isinstance(node, (DictConfig, ListConfig)) else node

    data = plain(data)
    record = {"generator": plain(generator),
              "data": {"name": data["name"], "shape": [int(s) for s in data["shape"]]}}
    if prior is not None:
        record["prior"] = plain(prior)
    return record


def check_resume(path: str | Path, module) -> None:
    """Refuse, in one line, a checkpoint this module cannot resume from: unreadable or
    pickling code, other training settings, or another architecture. The settings come
    first: another augmentation (ADA keeps its state as buffers) also changes the weights'
    names, and the settings say why."""
    saved = read_checkpoint(path)
    check_recipe(saved, module.recipe, path)
    check_compatible(saved, module.state_dict(), path)


def recipe_record(**settings) -> dict:
    """The settings a resumed run must share with its checkpoint (loss, penalty,
    augmentation, optimisers, n_critic, data), as plain containers: resuming with others
    would train on with the checkpoint's optimiser settings while the run's record names
    the new."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return {k: OmegaConf.to_container(v, resolve=True)
            if isinstance(v, (DictConfig, ListConfig)) else v for k, v in settings.items()}


#: Settings added to the recipe after recipes were first kept, each with the one value
#: every run had before it could be chosen.
RECIPE_BEFORE = {
    "prior": {"_target_": "ganzoo.priors.Gaussian"},  # since latent priors could be chosen
    "topk": {"keep": None, "warmup": 0},  # since top-k training could be chosen
}


def check_recipe(ckpt: dict, recipe: dict, path: str | Path) -> None:
    """Refuse, in one line, resuming with other training settings than the checkpoint's."""
    saved = ckpt["ganzoo"].get("recipe")
    if not saved or not recipe:
        return  # a checkpoint from before recipes were kept: the weights check is all
    # A checkpoint from before a setting could be chosen trained with its one value then.
    saved = {**{k: v for k, v in RECIPE_BEFORE.items() if k in recipe}, **saved}

    def flat(node, other, prefix=""):
        # Leaves by dotted key, descending where the other side has a node too (a setting
        # that is null on one side is shown whole: penalty: None there, {...} here).
        if isinstance(node, dict) and isinstance(other, dict):
            return {k: v for key, sub in node.items()
                    for k, v in flat(sub, other.get(key), f"{prefix}{key}.").items()}
        return {prefix[:-1]: node}

    old, new = flat(saved, recipe), flat(recipe, saved)
    differ = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if differ:
        shown = "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} here" for k in differ[:3])
        more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
        raise CheckpointError(f"{path} was trained with other settings ({shown}{more}); "
                              "resume with the settings it was trained with, or start a new run")


class ResumeState:
    """The checkpoint hooks of the GAN module: everything a bit-exact resume needs beyond
    what Lightning stores, and what sampling needs (``sampling``, ``label_prior``)."""

    # What GAN(...) cannot be built without; Lightning's load_from_checkpoint finds them
    # nowhere in a ganzoo checkpoint (the module is built from its Hydra config).
    _BUILT_FROM = ("generator", "discriminator", "loss", "optimizer_g", "optimizer_d",
                   "latent_dim")

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Lightning's loader, when the networks, loss and optimisers are given as keyword
        arguments (the checkpoint supplies the weights and state); without them, one line
        saying what to use instead."""
        missing = [name for name in cls._BUILT_FROM if name not in kwargs]
        if missing:
            raise TypeError(
                f"GAN.load_from_checkpoint needs {', '.join(missing)} as keyword arguments: "
                "a ganzoo checkpoint keeps weights, not the Hydra config that builds the "
                f"module. To sample: ganzoo.load_generator({str(checkpoint_path)!r}); to "
                f"train on: uv run train.py <its overrides> ckpt_path={checkpoint_path}")
        kwargs.setdefault("weights_only", True)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Everything a bit-exact resume needs beyond what Lightning stores (weights,
        # optimisers, schedulers, loop counters): the place in the k:1 schedule and the
        # random streams that draw z, the penalty's interpolation points and the augmentation's
        # parameters (ADA's p is a buffer of the module: Lightning stores it with the weights).
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["ganzoo"] = {"g_step": self.g_step, "d_step": self.d_step,
                                "skipped_steps": self.skipped_steps, "rng": rng,
                                "latent_dim": self.latent_dim, **self.sampling,
                                "recipe": self.recipe}
        if self.label_prior is not None:
            checkpoint["ganzoo"]["label_prior"] = self.label_prior.tolist()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("ganzoo")
        if state is None:
            raise ValueError("not a ganzoo checkpoint (it has no 'ganzoo' section)")
        self.g_step, self.d_step = int(state["g_step"]), int(state["d_step"])
        self.guard.skipped = int(state.get("skipped_steps", 0))
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        # One real batch per critic step: continue the data stream where it stopped.
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if datamodule is not None:
            datamodule.seek(self.d_step)


_PLAIN = (int, float, bool, str, type(None))


def _impure(value, where: str) -> str | None:
    """Why ``value`` is not plain data (None if it is): only numbers, strings, booleans,
    None, and lists, tuples and str-keyed dicts of them, with no Hydra ``_key_``."""
    if isinstance(value, _PLAIN):
        return None
    if isinstance(value, (list, tuple)):
        return next((why for i, v in enumerate(value) if (why := _impure(v, f"{where}[{i}]"))),
                    None)
    if isinstance(value, dict):
        for key, v in value.items():
            if not isinstance(key, str):
                return f"{where} has a non-string key {key!r}"
            if key == "_target_":
                return f"{where} asks to build {v!r}"
            if key.startswith("_"):
                return f"{where} has the key {key!r}"
            if why := _impure(v, f"{where}.{key}"):
                return why
        return None
    return f"{where} is a {type(value).__name__}"


def build_generator(node, path: str | Path) -> torch.nn.Module:
    """The generator a checkpoint's config node describes, built without Hydra.

    A checkpoint comes from anywhere, and ``hydra.utils.instantiate`` on its config would
    call whatever it names (``builtins.open`` empties a file). So: only the classes of
    ``ganzoo.nets.GENERATORS``, called with plain-data keyword arguments.
    """
    from ganzoo.nets import GENERATORS

    if not isinstance(node, dict) or "_target_" not in node:
        raise CheckpointError(f"{path} holds no generator config")
    target = node["_target_"]
    if not isinstance(target, str) or target not in GENERATORS:
        raise CheckpointError(f"{path}: refusing to build {target!r}: sampling builds only "
                              "the generators of ganzoo.nets.GENERATORS")
    kwargs = {k: v for k, v in node.items() if k != "_target_"}
    why = _impure(kwargs, "generator")
    if why:
        raise CheckpointError(f"{path}: refusing to build {target}: {why}; generator "
                              "arguments must be plain data")
    module, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    try:
        return cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - an unknown or bad argument: one message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot rebuild its generator {target} ({first})") from exc
