#!/usr/bin/env python3
"""Expected values for experiments/stats_test.go, from SciPy and
statsmodels-free formulas written out here (run with Debian's
/usr/bin/python3, python3-scipy):

    /usr/bin/python3 experiments/testdata/stats_golden.py > experiments/testdata/stats_golden.json

Wilson intervals come from scipy.stats.binomtest(...).proportion_ci(
method="wilson"); the two-proportion test from the pooled z statistic and
scipy.stats.norm; the sample ratio test from scipy.stats.chisquare.
"""
import json

import numpy as np
from scipy import stats

Z95 = stats.norm.ppf(0.975)

proportions = [(0, 10), (3, 10), (10, 10), (120, 4000), (1, 100000), (4800, 10000)]
wilson = []
for k, n in proportions:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    wilson.append({"successes": k, "trials": n, "lo": ci.low, "hi": ci.high})

pairs = [((130, 4000), (120, 4000)), ((200, 4000), (120, 4000)), ((5, 900), (0, 1000)), ((48, 1000), (52, 1000))]
compare = []
for (k1, n1), (k0, n0) in pairs:
    r1, r0 = k1 / n1, k0 / n0
    pooled = (k1 + k0) / (n1 + n0)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    z = (r1 - r0) / se
    p = 2 * stats.norm.sf(abs(z))
    se_u = np.sqrt(r1 * (1 - r1) / n1 + r0 * (1 - r0) / n0)
    compare.append({"variant": [k1, n1], "baseline": [k0, n0], "difference": r1 - r0,
                    "lo": r1 - r0 - Z95 * se_u, "hi": r1 - r0 + Z95 * se_u, "p": p})

splits = [([4500, 4500, 1000], [45, 45, 10]), ([4700, 4300, 1000], [45, 45, 10]),
          ([5020, 4980], [50, 50]), ([50500, 49500], [1, 1]), ([100, 200, 300, 400], [1, 2, 3, 4])]
srm = []
for obs, shares in splits:
    total = sum(obs)
    exp = [total * s / sum(shares) for s in shares]
    res = stats.chisquare(obs, exp)
    srm.append({"observed": obs, "shares": shares, "chi2": res.statistic, "p": res.pvalue})

print(json.dumps({"wilson": wilson, "compare": compare, "srm": srm}, indent=1))
