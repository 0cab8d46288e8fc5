#!/bin/bash
# A sweep as a SLURM array job, for clusters without Dask: each array task runs its share of the
# sweep's tasks into a shared folder; a last job, run after all of them, combines the results.
#
#   sbatch --array=0-9 scripts/sweep_slurm_array.sh configs/sweeps/escalation_designs.yaml out/sweep
#   sbatch --dependency=afterok:<array job id> --wrap "trialsim collect out/sweep"
#
# Re-submitting the same array resumes: finished tasks are skipped.
#SBATCH --job-name=trialsim-sweep
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=01:00:00
set -euo pipefail
SWEEP=${1:?usage: sweep_slurm_array.sh SWEEP.yaml OUT}
OUT=${2:?usage: sweep_slurm_array.sh SWEEP.yaml OUT}
N=${SLURM_ARRAY_TASK_COUNT:-1}
I=${SLURM_ARRAY_TASK_ID:-0}
trialsim sweep "$SWEEP" --out "$OUT" --backend serial --task "$I" --of "$N"
