#!/usr/bin/env python3
"""Train the demo's two ranking models on the demo customers.

    make train-demo          (PYTHON=... picks the interpreter)
    python3 models/training/train_demo.py [--rules DIR]

Needs numpy, scikit-learn 1.2, xgboost 1.7 and PyYAML. It writes both models
into the rules directory (configs/rules unless --rules says otherwise) and
prints a short report: rows, positives and holdout AUC per model. The output
is deterministic for those versions: every random draw comes from SEED, and
XGBoost trains on one thread.

Where the outcomes come from
----------------------------
The 3,000 demo customers in configs/demo/customers.jsonl are synthetic, and
nobody has ever been shown the demo's coupons or recommendations. So this
script invents the outcomes: it simulates impressions, decides each one's
outcome by a coin flip with a probability given by a response function
written down below, and trains the models on those outcomes as if they had
been logged. The models therefore learn to imitate these functions and
nothing else; a number they give in the demo says how the function behaves,
not how real shoppers do. The functions are meant to be plausible (a bigger
saving persuades more, a list matching a customer's interests is clicked
more), not measured.

Model 1: coupon_response (XGBoost, configs/rules/models/coupon_response.json)
-----------------------------------------------------------------------------
The probability that a customer redeems a cart coupon of `discount` percent.
One simulated cart session per customer and round (SESSIONS rounds): the
customer's own cart in the first round when they have one, otherwise a cart
drawn the way the demo data generator draws them (1-5 items at 12-70 EUR
each); the discount is drawn from DISCOUNTS. The redemption probability is
sigmoid(z), with the saving in EUR s = cart_value * discount / 100 and

    z = -2.3
        + 3.0  * (coupon_propensity - 0.35)        the customer's taste for coupons
        + 0.7  * ln(1 + s / 5)                     a bigger saving persuades, less and less
        + 0.06 * (discount - 10) * coupon_propensity   coupon fans care about the headline rate
        + 0.15 * (min(cart_items, 5) - 1)          a fuller cart is a firmer intention
        - 0.4  * ln(1 + days_since_last_purchase / 30)   recent buyers come back
          (or - 0.5 for a customer who never ordered: first orders hesitate)
        + 0.25 * ln(1 + orders_90d)                frequent buyers finish orders
        - 1.2  * churn_risk                        those drifting away ignore us
        + 0.1  * ln(1 + ltv / 100)                 a long history, a little more trust

The model reads those eight values: cart_value, cart_items,
coupon_propensity, churn_risk, days_since_last_purchase, orders_90d and ltv
as the customer features of those names, and discount from the touchpoint
(touchpoint.discount in the rules). Real feature stores have holes, and the
engine passes a feature a customer's record lacks to a model as missing, so
the training data has them too: for MISSING_SCORES of the customers the two
model scores (churn_risk, coupon_propensity) are missing, as for customers
who signed up after the last scoring run, and for MISSING_HISTORY the order
history (ltv, orders_90d, days_since_last_purchase) is, as for customers
whose history was never imported. Their outcomes still follow their true
values; the trees learn where to send a missing value. (A
days_since_last_purchase of -1, never ordered, is a value, as the feature
schema has it, not a missing one.) The demo customers' records are
complete, so in the demo missing values come from customers written through
the API with a few features, and from fixtures.

XGBoost (XGB_PARAMS): 80 trees of depth 4, binary:logistic, with the
probability constrained to rise with every input the function raises it
with and to fall with churn_risk. The model is trained on 80% of the
customers; AUC is measured on the other 20%, next to the AUC of the true
probabilities on the same rows (the best any model could do on these coin
flips).

Model 2: recs_click (logistic, configs/rules/models/recs_model.yaml)
-------------------------------------------------------------------
The probability that a customer clicks a recommendation list in the
product_recs strip. The lists are the touchpoints of the rules in
configs/rules that may fill product_recs and declare a category and a price
attribute (read from the rule files, so the simulation sees the catalogue
the engine serves). One simulated impression per customer and list, and

    z = APPEAL[category]                           how broad the list's pull is
        + 1.8  * (category in interests)           exactly what the customer browses
        - 0.9  * |ln(price / avg_basket)|          far from the usual basket, fewer clicks
          (0 for a customer without orders, avg_basket 0)
        + TIER_LIFT[tier] + LIFECYCLE_LIFT[lifecycle]
        + 0.3  * app_installed                     app users are more engaged
        + 0.25 * ln(1 + orders_90d)

A logistic regression (scikit-learn, L2, C=1) learns it from: the list's
category (one-hot), interest_match, price_ratio = price / avg_basket (1 when
avg_basket is 0) in PRICE_BOUNDS buckets, tier and lifecycle (one-hot),
app_installed, and ln(1 + orders_90d) standardised. Only the first three
differ between the lists shown to one customer, so they decide the strip's
order; the customer's own terms set how likely a click is at all.

The model is written as an inline logistic model in a generated rule file,
with the expressions that bind its inputs and fixtures whose expected
outputs come from the same export, so `touchpoint rules check` verifies
that the engine scores the model as trained. Its weights are rounded to six
decimals; the script checks that the rounded model agrees with
scikit-learn's to within 1e-4 on every simulated impression.
"""

import argparse
import json
import math
import os
import re
import sys

import numpy as np
import xgboost as xgb
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CUSTOMERS = os.path.join(ROOT, "configs", "demo", "customers.jsonl")
RULES = os.path.join(ROOT, "configs", "rules")
# The outputs, relative to the rules directory.
COUPON_OUT = os.path.join("models", "coupon_response.json")
RECS_OUT = os.path.join("models", "recs_model.yaml")

SEED = 20260610
HOLDOUT = 0.2

# --- coupon_response -------------------------------------------------------

SESSIONS = 4
DISCOUNTS = [5, 10, 15, 20, 25]
MISSING_SCORES = 0.10
MISSING_HISTORY = 0.05
COUPON_INPUTS = ["cart_value", "cart_items", "coupon_propensity", "churn_risk",
                 "days_since_last_purchase", "orders_90d", "ltv", "discount"]
XGB_PARAMS = {
    "objective": "binary:logistic",
    "max_depth": 4,
    "eta": 0.1,
    "min_child_weight": 10,
    "lambda": 1.0,
    "tree_method": "hist",
    # The response function only ever rises with these inputs (or falls,
    # with churn_risk); saying so keeps the trees from learning the
    # coin flips' noise as dips, so a bigger cart never lowers the odds.
    # days_since_last_purchase is free: -1 (never ordered) is below 0.
    "monotone_constraints": "(1,1,1,-1,0,1,1,1)",
    "nthread": 1,
    "seed": SEED,
}
XGB_ROUNDS = 80

# Profiles whose outputs are printed after training, so that a retrained
# model's can be compared with configs/rules/cart.yaml: the coupon_response
# tests (the first three), then the cart_abandon_coupon tests on either side
# of its threshold (0.2). Features not given are missing.
CART = {"cart_value": 89.9, "cart_items": 3, "discount": 10}
SMALL_CART = {"cart_value": 45, "cart_items": 1, "discount": 10}
COUPON_SPOT_CHECKS = [
    ("Mei (c-000042) and 10% off her 89.90 EUR cart",
     dict(CART, coupon_propensity=0.62, churn_risk=0.18, days_since_last_purchase=12, orders_90d=2, ltv=1290)),
    ("without an order history or churn score the model goes by the cart and the taste for coupons",
     dict(CART, coupon_propensity=0.62)),
    ("a customer who rarely uses coupons is unlikely to use this one", dict(CART, coupon_propensity=0.1)),
    ("(rule test) a coupon fan with a small abandoned cart", dict(SMALL_CART, coupon_propensity=0.7)),
    ("(rule test) a lukewarm coupon user with a small abandoned cart", dict(SMALL_CART, coupon_propensity=0.4)),
]


def coupon_logit(cust, cart_value, cart_items, discount):
    """The coupon response function of the module docstring, as a margin."""
    cp = cust["coupon_propensity"]
    saving = cart_value * discount / 100
    days = cust["days_since_last_purchase"]
    z = -2.3
    z += 3.0 * (cp - 0.35)
    z += 0.7 * math.log1p(saving / 5)
    z += 0.06 * (discount - 10) * cp
    z += 0.15 * (min(cart_items, 5) - 1)
    z += -0.5 if days < 0 else -0.4 * math.log1p(days / 30)
    z += 0.25 * math.log1p(cust["orders_90d"])
    z -= 1.2 * cust["churn_risk"]
    z += 0.1 * math.log1p(cust["ltv"] / 100)
    return z


def draw_cart(rng):
    """A cart as the demo data generator draws one: items, then value."""
    items = int(rng.choice([1, 2, 3, 4, 5], p=[0.35, 0.25, 0.18, 0.12, 0.10]))
    return round(items * rng.uniform(12, 70), 2), items


def coupon_data(customers, rng):
    """Simulated cart sessions: inputs (NaN = missing), outcomes, the true
    probabilities and each row's customer index."""
    rows, ys, ps, who = [], [], [], []
    for i, c in enumerate(customers):
        no_scores = rng.random() < MISSING_SCORES
        no_history = rng.random() < MISSING_HISTORY
        for s in range(SESSIONS):
            if s == 0 and c["cart_value"] > 0:
                cart_value, cart_items = c["cart_value"], c["cart_items"]
            else:
                cart_value, cart_items = draw_cart(rng)
            discount = int(rng.choice(DISCOUNTS))
            p = sigmoid(coupon_logit(c, cart_value, cart_items, discount))
            x = {"cart_value": cart_value, "cart_items": cart_items, "discount": discount}
            for k in ("coupon_propensity", "churn_risk"):
                x[k] = math.nan if no_scores else c[k]
            for k in ("ltv", "orders_90d", "days_since_last_purchase"):
                x[k] = math.nan if no_history else c[k]
            rows.append([x[k] for k in COUPON_INPUTS])
            ps.append(p)
            ys.append(1 if rng.random() < p else 0)
            who.append(i)
    return np.array(rows, dtype=float), np.array(ys), np.array(ps), np.array(who)


def matrix(X, y=None):
    """A DMatrix naming the inputs, so that the model file carries their
    names (the rules bind inputs by name); NaN is missing."""
    return xgb.DMatrix(X, label=y, feature_names=COUPON_INPUTS, feature_types=["float"] * len(COUPON_INPUTS))


def train_coupon(customers, test_customer, rules):
    rng = np.random.default_rng(SEED)
    X, y, p, who = coupon_data(customers, rng)
    test = test_customer[who]
    dtrain = matrix(X[~test], y[~test])
    dtest = matrix(X[test], y[test])
    booster = xgb.train(XGB_PARAMS, dtrain, num_boost_round=XGB_ROUNDS)
    booster.save_model(os.path.join(rules, COUPON_OUT))
    pred = booster.predict(dtest)
    report("coupon_response (XGBoost, %d trees, depth %d)" % (XGB_ROUNDS, XGB_PARAMS["max_depth"]),
           y, test, roc_auc_score(y[test], pred), roc_auc_score(y[test], p[test]),
           "missing: %.1f%% of coupon_propensity, %.1f%% of ltv" % (
               100 * np.isnan(X[:, 2]).mean(), 100 * np.isnan(X[:, 6]).mean()))
    print("  spot checks (see configs/rules/cart.yaml):")
    for name, x in COUPON_SPOT_CHECKS:
        row = np.array([[x.get(k, math.nan) for k in COUPON_INPUTS]], dtype=float)
        print("    %.4f  %s" % (booster.predict(matrix(row))[0], name))


# --- recs_click ------------------------------------------------------------

# APPEAL is each list's click margin before anything about the customer:
# focused lists pull more than broad ones, the cart's complements most.
APPEAL = {
    "running": -2.3, "outdoor": -2.5, "skincare": -2.2, "yoga": -2.5,
    "home": -2.4, "personal_mix": -2.6, "top_rated": -2.1, "cart_complements": -1.8,
}
APPEAL_OTHER = -2.6
TIER_LIFT = {"none": 0.0, "silver": 0.15, "gold": 0.3, "platinum": 0.4}
LIFECYCLE_LIFT = {"new": 0.25, "active": 0.35, "lapsing": -0.15, "churned": -0.5}
PRICE_BOUNDS = [0.5, 0.8, 1.25, 2.0]
TIERS = ["none", "silver", "gold", "platinum"]
LIFECYCLES = ["new", "active", "lapsing", "churned"]

# The inputs as the rules bind them; price_ratio must compute what
# price_ratio() below computes.
RECS_INPUTS = {
    "category": "touchpoint.category",
    "interest_match": "touchpoint.category in customer.interests",
    "price_ratio": "customer.avg_basket > 0 ? touchpoint.price / customer.avg_basket : 1.0",
}

# Fixtures written with the model: (name, customer features, touchpoint).
RECS_FIXTURES = [
    ("Mei (c-000042), a runner, and the trail running list", "c-000042", "recs_trail_running"),
    ("Mei and the skincare list, which she does not browse", "c-000042", "recs_skincare"),
    ("a new customer without orders: the price fits by definition",
     {"interests": ["skincare"], "avg_basket": 0, "tier": "none", "lifecycle": "new",
      "app_installed": False, "orders_90d": 0}, "recs_skincare"),
    ("missing features add nothing: only interests are known",
     {"interests": ["yoga"]}, "recs_yoga_studio"),
]


def recs_lists(rules):
    """The touchpoints that may fill product_recs with a category and a
    price attribute, as the rule files declare them."""
    out = []
    for dirpath, dirnames, filenames in os.walk(rules):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.endswith((".yaml", ".yml")):
                continue
            with open(os.path.join(dirpath, name)) as f:
                doc = yaml.safe_load(f) or {}
            for tp in doc.get("touchpoints") or []:
                attrs = tp.get("attributes") or {}
                places = tp.get("placements") or []
                if "product_recs" in places and "category" in attrs and "price" in attrs:
                    out.append((tp["id"], attrs["category"], float(attrs["price"])))
    if not out:
        sys.exit("train_demo: no product_recs touchpoint in %s declares category and price attributes" % rules)
    return sorted(out)


def price_ratio(price, avg_basket):
    return price / avg_basket if avg_basket > 0 else 1.0


def click_logit(cust, category, price):
    """The click function of the module docstring, as a margin."""
    z = APPEAL.get(category, APPEAL_OTHER)
    z += 1.8 * (category in cust["interests"])
    z -= 0.9 * abs(math.log(price_ratio(price, cust["avg_basket"])))
    z += TIER_LIFT[cust["tier"]] + LIFECYCLE_LIFT[cust["lifecycle"]]
    z += 0.3 * cust["app_installed"]
    z += 0.25 * math.log1p(cust["orders_90d"])
    return z


class RecsDesign:
    """Turns (customer, list) pairs into the regression's columns, and the
    fitted weights back into the rule file's terms."""

    def __init__(self, categories, log_orders):
        self.categories = categories
        self.mean = float(np.mean(log_orders))
        self.std = float(np.std(log_orders))
        self.columns = (["category=" + c for c in categories] + ["interest_match"]
                        + ["price_ratio bucket %d" % k for k in range(len(PRICE_BOUNDS) + 1)]
                        + ["tier=" + t for t in TIERS] + ["lifecycle=" + l for l in LIFECYCLES]
                        + ["app_installed", "orders_90d"])

    def row(self, cust, category, price):
        r = [1.0 if category == c else 0.0 for c in self.categories]
        r.append(1.0 if category in cust["interests"] else 0.0)
        bucket = sum(1 for b in PRICE_BOUNDS if b <= price_ratio(price, cust["avg_basket"]))
        r += [1.0 if bucket == k else 0.0 for k in range(len(PRICE_BOUNDS) + 1)]
        r += [1.0 if cust["tier"] == t else 0.0 for t in TIERS]
        r += [1.0 if cust["lifecycle"] == l else 0.0 for l in LIFECYCLES]
        r.append(1.0 if cust["app_installed"] else 0.0)
        r.append((math.log1p(cust["orders_90d"]) - self.mean) / self.std)
        return r

    def export(self, clf):
        """The model as the rule file's intercept and terms, rounded."""
        w = [round(float(v), 6) for v in clf.coef_[0]]
        nc, nb = len(self.categories), len(PRICE_BOUNDS) + 1
        at = 0

        def take(n):
            nonlocal at
            at += n
            return w[at - n:at]

        terms = [
            {"input": "category", "one_hot": dict(zip(self.categories, take(nc)))},
            {"input": "interest_match", "weight": take(1)[0]},
            {"input": "price_ratio", "buckets": {"bounds": PRICE_BOUNDS, "weights": take(nb)}},
            {"input": "tier", "one_hot": dict(zip(TIERS, take(len(TIERS))))},
            {"input": "lifecycle", "one_hot": dict(zip(LIFECYCLES, take(len(LIFECYCLES))))},
            {"input": "app_installed", "weight": take(1)[0]},
            {"input": "orders_90d", "weight": take(1)[0], "log1p": True,
             "mean": round(self.mean, 6), "std": round(self.std, 6)},
        ]
        return round(float(clf.intercept_[0]), 6), terms


def exported_score(intercept, terms, inputs):
    """The exported model's output as models/read.go defines a logistic
    model: missing inputs (absent from inputs) contribute 0."""
    z = intercept
    for t in terms:
        x = inputs.get(t["input"])
        if x is None:
            continue
        if "one_hot" in t:
            z += t["one_hot"].get(x, 0.0)
        elif "buckets" in t:
            z += t["buckets"]["weights"][sum(1 for b in t["buckets"]["bounds"] if b <= x)]
        else:
            v = float(x)
            if t.get("log1p"):
                v = math.log1p(v)
            if "std" in t:
                v = (v - t["mean"]) / t["std"]
            z += t["weight"] * v
    return sigmoid(z)


def model_inputs(cust, category, price):
    """The inputs the engine binds for a customer (a dict of the features
    the record carries) and a list, None for missing ones."""
    out = {"category": category, "tier": cust.get("tier"), "lifecycle": cust.get("lifecycle"),
           "orders_90d": cust.get("orders_90d")}
    interests = cust.get("interests", [])
    out["interest_match"] = 1.0 if category in interests else 0.0
    out["price_ratio"] = price_ratio(price, cust.get("avg_basket", 0))
    if "app_installed" in cust:
        out["app_installed"] = 1.0 if cust["app_installed"] else 0.0
    return out


def train_recs(customers, test_customer, rules):
    rng = np.random.default_rng(SEED + 1)
    lists = recs_lists(rules)
    categories = sorted({cat for _, cat, _ in lists})
    # Standardised on the training customers only, like everything learned.
    design = RecsDesign(categories, [math.log1p(c["orders_90d"]) for c, t in zip(customers, test_customer) if not t])
    X, y, p, test = [], [], [], []
    for i, c in enumerate(customers):
        for _, category, price in lists:
            pi = sigmoid(click_logit(c, category, price))
            X.append(design.row(c, category, price))
            p.append(pi)
            y.append(1 if rng.random() < pi else 0)
            test.append(test_customer[i])
    X, y, p, test = np.array(X), np.array(y), np.array(p), np.array(test)
    clf = LogisticRegression(C=1.0, max_iter=1000)
    clf.fit(X[~test], y[~test])
    intercept, terms = design.export(clf)

    # The rounded export must score what scikit-learn scores.
    theirs = clf.predict_proba(X)[:, 1]
    ours = [exported_score(intercept, terms, model_inputs(c, category, price))
            for c in customers for _, category, price in lists]
    worst = float(np.max(np.abs(np.array(ours) - theirs)))
    if worst > 1e-4:
        sys.exit("train_demo: the rounded recs_click model is %.2g away from scikit-learn's" % worst)

    report("recs_click (logistic, %d terms over %d columns)" % (len(terms), len(design.columns)),
           y, test, roc_auc_score(y[test], clf.predict_proba(X[test])[:, 1]), roc_auc_score(y[test], p[test]),
           "%d lists: %s" % (len(lists), ", ".join(tp for tp, _, _ in lists)))

    by_id = {c["id"]: c for c in customers}
    price_of = {tp: (cat, price) for tp, cat, price in lists}
    tests = []
    for name, who, tp in RECS_FIXTURES:
        cust = by_id[who] if isinstance(who, str) else who
        keep = ["interests", "avg_basket", "tier", "lifecycle", "app_installed", "orders_90d"]
        given = {k: cust[k] for k in keep if k in cust}
        score = exported_score(intercept, terms, model_inputs(given, *price_of[tp]))
        tests.append({"name": name, "customer": given, "touchpoint": tp,
                      "expect_score": round(score, 6), "tolerance": 1e-6})
    write_recs(os.path.join(rules, RECS_OUT), intercept, terms, tests, y, lists)


def write_recs(path, intercept, terms, tests, y, lists):
    header = (
        "# Generated by models/training/train_demo.py; do not edit by hand (run\n"
        "# make train-demo to regenerate it).\n"
        "#\n"
        "# recs_click is a logistic regression learned from %d simulated impressions\n"
        "# (%d clicks) of the %d product_recs lists; the click function it imitates\n"
        "# is written down in the script. Its fixtures were computed from this\n"
        "# export, so rules check verifies that the engine scores it as trained.\n"
        % (len(y), int(y.sum()), len(lists)))
    lines = [
        "models:",
        "  - id: recs_click",
        "    type: logistic",
        "    description: " + scalar("Probability that the customer clicks a product_recs list, learned from simulated impressions"),
        "    inputs:",
    ]
    lines += ["      %s: %s" % (k, scalar(v)) for k, v in RECS_INPUTS.items()]
    lines += ["    intercept: " + scalar(intercept), "    terms:"]
    lines += ["      - " + flow(t) for t in terms]
    lines.append("    tests:")
    for t in tests:
        lines.append("      - name: " + scalar(t["name"]))
        lines += ["        %s: %s" % (k, flow(v)) for k, v in t.items() if k != "name"]
    text = header + "\n" + "\n".join(lines) + "\n"
    # The file is written by hand-rolled YAML so that it reads well; make
    # sure it says what was meant.
    want = {"models": [{"id": "recs_click", "type": "logistic", "inputs": RECS_INPUTS,
                        "intercept": intercept, "terms": terms, "tests": tests}]}
    got = yaml.safe_load(text)
    del got["models"][0]["description"]
    if got != want:
        sys.exit("train_demo: the generated recs_model.yaml does not read back as written")
    with open(path, "w") as f:
        f.write(text)


def scalar(v):
    """One YAML scalar: plain where that is unambiguous, else quoted."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%d" % v
    if isinstance(v, float):
        # Every float written is rounded to six decimals; no exponents, so
        # YAML 1.1 readers see numbers too.
        t = ("%.6f" % v).rstrip("0")
        return t + "0" if t.endswith(".") else t
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ .()-]*", v) and v.lower() not in (
            "true", "false", "yes", "no", "on", "off", "null", "y", "n") and not v.endswith(" "):
        return v
    return json.dumps(v)


def flow(v):
    """A value in YAML's flow style, on one line."""
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (k, flow(x)) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(flow(x) for x in v) + "]"
    s = scalar(v)
    return s if isinstance(v, (bool, int, float)) or "," not in s else json.dumps(v)


# --- shared ----------------------------------------------------------------

def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def report(title, y, test, auc, best_auc, extra):
    print(title)
    print("  rows %d (train %d, holdout %d); positives %d (%.1f%%)" % (
        len(y), int((~test).sum()), int(test.sum()), int(y.sum()), 100 * y.mean()))
    print("  holdout AUC %.3f (the true probabilities: %.3f); %s" % (auc, best_auc, extra))


def main():
    ap = argparse.ArgumentParser(description="Train the demo's ranking models (see the module docstring).")
    ap.add_argument("--rules", default=RULES, help="rules directory to read the lists from and write the models into (default: configs/rules)")
    rules = ap.parse_args().rules
    with open(CUSTOMERS) as f:
        customers = [dict(json.loads(line)["features"], id=json.loads(line)["id"]) for line in f if line.strip()]
    # The holdout is a fifth of the customers, the same for both models, so
    # no customer's rows are on both sides.
    test_customer = np.random.default_rng(SEED - 1).random(len(customers)) < HOLDOUT
    print("%d demo customers from %s; %d held out\n" % (
        len(customers), os.path.relpath(CUSTOMERS, ROOT), int(test_customer.sum())))
    os.makedirs(os.path.join(rules, "models"), exist_ok=True)
    train_coupon(customers, test_customer, rules)
    print()
    train_recs(customers, test_customer, rules)
    print("\nwrote %s and %s in %s" % (COUPON_OUT, RECS_OUT, rules))


if __name__ == "__main__":
    main()
