#!/usr/bin/env bash
# The fault campaign, for long runs: new random seeds by default (each printed, so that a failure
# can be replayed), or --seed S to replay one.
#
#   scripts/campaign.sh [--steps N] [--examples N] [--seed S]... [--runs N] [--no-shrink]
#
# It builds the debug binary (the one that reads EC2SNAP_CLOCK_OFFSET) and installs the emulator
# and the campaign's packages first, as scripts/test.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=20 examples=5 runs=1 seeds=() shrink=1
while (($#)); do
    case "$1" in
        --steps) steps=$2; shift 2 ;;
        --examples) examples=$2; shift 2 ;;
        --seed) seeds+=("$2"); shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --no-shrink) shrink=0; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "campaign.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
    esac
done
for n in "$steps" "$examples" "$runs"; do
    [[ $n =~ ^[1-9][0-9]{0,5}$ ]] || { echo "campaign.sh: $n is not a count from 1 to 999999" >&2; exit 1; }
done
if ((${#seeds[@]} == 0)); then
    for ((i = 0; i < runs; i++)); do seeds+=("$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"); done
fi
bash scripts/setup-emulator.sh
cargo build --locked --quiet
export EC2SNAP_BIN="${CARGO_TARGET_DIR:-target}/debug/ec2snap"
IFS=, joined="${seeds[*]}"
echo "campaign: seeds $joined, $examples examples of at most $steps steps each"
CAMPAIGN_SEEDS="$joined" CAMPAIGN_EXAMPLES="$examples" CAMPAIGN_STEPS="$steps" CAMPAIGN_SHRINK="$shrink" \
    exec .venv/bin/python -m pytest -x -q -s -p no:cacheprovider tests/campaign/test_campaign.py
