"""Train a video model with Lightning and track its static/dynamic bias every epoch.

    python train.py                                   # the embedded default: tiny FastOnly and SlowOnly on
                                                      # the synthetic motion task, CPU, a few minutes
    python train.py --config configs/fast_motion.yaml [--trainer.max_epochs 3 --model.model_name slow ...]
    python train.py --config ... --ckpt_path last     # resume the run from its last checkpoint
    python train.py --config ... --stage validate --ckpt_path PATH
    python train.py shuffle-experiment --tasks appearance,mixed,motion --models slow,fast [--epochs ...]

See docs/training.md (run layout, W&B, DDP with --trainer.devices/--trainer.num_nodes/--trainer.strategy ddp).
"""
import sys

from lit_stbias.lightning.experiments import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
