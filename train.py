"""Train a video model with Lightning and track its static/dynamic bias every epoch.

    python train.py                                            # the embedded default (= train.py default):
                                                               # tiny FastOnly and SlowOnly on synthetic motion
    python train.py default --seeds 0,1,2                      # the same over three training seeds
    python train.py fit --config configs/fast_motion.yaml [--trainer.max_epochs 3 --model.model_name slow ...]
    python train.py fit --config configs/fast_motion.yaml --ckpt_path last        # resume that run
    python train.py validate --config configs/fast_motion.yaml --ckpt_path last   # evaluate its last checkpoint
    python train.py shuffle-experiment --config configs/shuffle_experiment.yaml [--seeds 0,1,2 --epochs ...]
    python train.py --help                                     # the subcommands; train.py fit --help: every option

Installed, the same command is ``lit-stbias-train``. See docs/training.md (run layout, W&B, DDP with
--trainer.devices/--trainer.num_nodes/--trainer.strategy ddp).
"""
import sys

from lit_stbias.lightning.experiments import main

if __name__ == "__main__":
    sys.exit(main())
