#!/usr/bin/env bash
# Round 5 of the real-photo models (docs/real-photos.md, "Round 5"): the U-Net trained
# mostly on the fitted camera noise (`--synthetic fitted`, denoiser/cameras.json), with
# the real pairs of the training cameras mixed in, leaving one camera out: Canon 80D,
# and Sony A7 II, one core each, side by side. RESUME=1 goes on where the last session
# stopped; MIN is the session's minutes of training.
set -u
MIN=${MIN:-130}
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
core=0
for camera in canon80d sonya7ii; do
    run=runs/round5_no_$camera
    if [ "${RESUME:-0}" = 1 ]; then
        args=(--resume)
    else
        # The Canon 5D Mark II run of round 4: it never saw either held-out camera.
        args=(--init-from runs/unet_real_no_nikon800/best.keras)
    fi
    taskset -c $core .venv/bin/python -m denoiser train-real --arch unet --hold-out-camera $camera \
        --train-dir ../shared/data/train/cbsd432 --pairs-dir ../shared/data/real/polyu_train --run-dir $run \
        --synthetic fitted --mean-share 0.3 --real-share 0.25 --clean-share 0.125 --level-input measured \
        --patch-size 128 --batch-size 8 --steps-per-epoch 250 --epochs 400 --lr 3e-4 --lr-halve-every 60 \
        --max-minutes "$MIN" "${args[@]}" > $run.out 2>&1 &
    core=$((core + 1))
done
wait
