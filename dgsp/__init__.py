"""dgsp: deep generative models, from a statistical perspective.

The package behind the course notebooks. Start with::

    import dgsp
    dev = dgsp.device()            # cuda, then mps, then cpu (DGSP_DEVICE overrides)
    dgsp.seed_everything(0)
    x, y = dgsp.data.load("mnist", split="train")
"""
from dgsp.core import by_mode, device, is_quick, output_dir, project_dir, seed_everything
from dgsp import adversarial, data, metrics, nets, recipes, results, train, viz, widgets  # noqa: E402  (core first)

__all__ = [
    "by_mode", "device", "is_quick", "output_dir", "project_dir", "seed_everything",
    "adversarial", "data", "metrics", "nets", "recipes", "results", "train", "viz", "widgets",
]
__version__ = "0.1.0"
