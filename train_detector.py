"""Train the detector of `detector=trained` for evaluate.py and serve.py: `python train_detector.py`."""

import hydra
from omegaconf import DictConfig

from visual_search.utils import cli


@hydra.main(version_base="1.3", config_path="conf", config_name="train_detector")
def main(cfg: DictConfig) -> dict | None:
    from visual_search.tasks.train_detector import train_detector

    return cli.run_task(train_detector, cfg)


if __name__ == "__main__":
    cli.launch(main, config_name="train_detector")
