#!/usr/bin/env bash
# Makes every figure in docs/figures/ from the presets (README "Gallery").
# Real data offline: Fashion-MNIST from Debian's dataset-fashion-mnist stands in for MNIST.
# Usage: bash docs/make_gallery.sh [preset ...]      (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/figures
SWEEPS=multirun/gallery
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(linreg_rmsprop_gamma quadratic_lr quadratic_lr_sweep quadratic_momentum ewa \
    rmsprop_alpha all_optimizers builtin_twins sgd_batch_size report)

sweep() {  # sweep <preset> [extra overrides...]
    local name=$1; shift
    rm -rf "$SWEEPS/$name"
    optbench -m "+experiment=$name" "hydra.sweep.dir=$SWEEPS/$name" quiet=true "$@"
}

for preset in "${presets[@]}"; do
    case $preset in
    linreg_rmsprop_gamma)
        sweep linreg_rmsprop_gamma
        optbench-plot "$SWEEPS/linreg_rmsprop_gamma" --out $OUT --force --name linreg_rmsprop_gamma ;;
    quadratic_lr)
        sweep quadratic_lr
        for job in "0 lr1" "2 lr0.2" "3 lr0.125"; do  # the seed's three panels: one lr each
            set -- $job
            optbench-plot "$SWEEPS/quadratic_lr/$1" --out $OUT --force --name "quadratic_$2"
        done ;;
    quadratic_lr_sweep)
        sweep quadratic_lr_sweep
        optbench-plot "$SWEEPS/quadratic_lr_sweep" --out $OUT --force --name quadratic_lr_sweep ;;
    quadratic_momentum)
        sweep quadratic_momentum
        optbench-plot "$SWEEPS"/quadratic_momentum/{1,2,3} --out $OUT --force --name quadratic_momentum ;;
    ewa)
        optbench-plot ewa --beta 0.98 0.95 0.9 0.8 --out $OUT --force --name ewa ;;
    rmsprop_alpha)
        sweep rmsprop_alpha dataset=fashion_mnist
        optbench-plot "$SWEEPS"/rmsprop_alpha/{0,1,2} --out $OUT --force --name rmsprop_alpha ;;
    all_optimizers)
        sweep all_optimizers dataset=fashion_mnist
        optbench-plot "$SWEEPS/all_optimizers" --out $OUT --force --name all_optimizers --table ;;
    builtin_twins)
        sweep builtin_twins dataset=fashion_mnist
        for pair in "0 1 momentum" "2 3 adagrad" "4 5 rmsprop" "6 7 adam" "8 9 adadelta"; do
            set -- $pair
            optbench-plot "$SWEEPS/builtin_twins/$1" "$SWEEPS/builtin_twins/$2" --out $OUT --force --name "twins_$3"
        done ;;
    sgd_batch_size)
        sweep sgd_batch_size dataset=fashion_mnist
        optbench-plot "$SWEEPS/sgd_batch_size" --out $OUT --force --name sgd_batch_size ;;
    report)  # optbench-report of five presets' sweeps (made above; swept here only if missing), then its screenshot
        for name in quadratic_lr quadratic_lr_sweep quadratic_momentum; do [ -d "$SWEEPS/$name" ] || sweep $name; done
        for name in rmsprop_alpha all_optimizers; do [ -d "$SWEEPS/$name" ] || sweep $name dataset=fashion_mnist; done
        optbench-report "$SWEEPS"/{all_optimizers,rmsprop_alpha,quadratic_lr,quadratic_lr_sweep,quadratic_momentum} \
            --out "$SWEEPS/report.html" --force --target fashion_mnist=0.35 --target quadratic=1e-6 \
            --title "optbench gallery: seed 000's optimizers on Fashion-MNIST, seed 003's quadratic"
        python -m optbench.report.screenshot "$SWEEPS/report.html" $OUT/report.png ;;  # needs chromium
    *) echo "unknown preset $preset" >&2; exit 2 ;;
    esac
done
