"""Compare every approach on the same data into one report: `python compare.py [overrides]`."""

import hydra
from omegaconf import DictConfig

from visual_search.utils import cli


@hydra.main(version_base="1.3", config_path="conf", config_name="compare")
def main(cfg: DictConfig) -> dict | None:
    from visual_search.tasks.compare import compare_job

    return compare_job(cfg)


if __name__ == "__main__":
    cli.launch(main, config_name="compare")
