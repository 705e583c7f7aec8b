#!/bin/bash
# Campaign, part 3: after the addition seq2seq study, modular arithmetic at seq2seq, then arithmetic at causal.
cd /work/main; source .venv/bin/activate
while pgrep -f "tune addition --layout seq2seq" > /dev/null; do sleep 20; done
echo "$(date +%H:%M) done addition seq2seq" >> runs/campaign/progress.log
tune() { # task layout space trial_s extra-set
  toyformer tune $1 --layout $2 --space runs/campaign/$3 --budget-s 2400 --trials 24 --trial-s $4 --threads 1 \
    --seeds 3 --set eval.target=0.999 $5 --out runs/campaign/v2-$1-$2 --quiet >> runs/campaign/v2-$1-$2.log 2>&1
  echo "$(date +%H:%M) done $1 $2 rc=$?" >> runs/campaign/progress.log
}
tune modular_arithmetic seq2seq seq.yaml 45
toyformer tune arithmetic --layout causal --config runs/campaign/arith_causal_base.yaml --space runs/campaign/arith_causal.yaml \
  --budget-s 5400 --trials 24 --trial-s 150 --threads 1 --seeds 1 --out runs/campaign/arith-causal --quiet >> runs/campaign/arith-causal.log 2>&1
echo "$(date +%H:%M) done arithmetic causal" >> runs/campaign/progress.log
