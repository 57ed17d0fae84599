"""Evaluate one approach on the configured dataset: `python evaluate.py experiment=<approach>`."""

import hydra
from omegaconf import DictConfig

from visual_search.utils import cli


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> dict | None:
    from visual_search.tasks.evaluate import evaluate

    return cli.run_task(evaluate, cfg)


if __name__ == "__main__":
    cli.launch(main, config_name="evaluate")
