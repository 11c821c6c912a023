# The demo rules that can fill the home_hero placement on web and app,
# written in Rego: the same eligibility conditions, suppression and
# arbitration as testdata/rules/home_hero.yaml, which compare_test.go checks
# answer for answer.
#
# input: {"customer": {<every feature of configs/features.yaml, defaults
#         applied>}, "known": bool, "context": {"channel": "web", ...}}
# data.touchpoint.home_hero.decision: the touchpoint shown, the rule that
# offered it and its score (rule score x touchpoint value), or the fallback.
package touchpoint.home_hero

# Touchpoints that fit home_hero: kind, business value and channels
# (empty = every channel), as in configs/rules/.
touchpoints := {
	"complaint_ack": {"kind": "message", "value": 1, "channels": {"web", "app"}},
	"complaint_escalated": {"kind": "message", "value": 1, "channels": {"web", "app"}},
	"risk_verify_account": {"kind": "message", "value": 1, "channels": {"web", "app"}},
	"birthday_gift": {"kind": "coupon", "value": 20, "channels": {"web", "app", "email"}},
	"retention_offer_20": {"kind": "offer", "value": 20, "channels": {"web", "app", "email"}},
	"vip_early_access": {"kind": "offer", "value": 50, "channels": {"web", "app", "email"}},
	"points_expiry_reminder": {"kind": "message", "value": 10, "channels": {"web", "app", "email"}},
	"tier_nudge": {"kind": "content", "value": 3, "channels": {"web", "app"}},
	"first_order_coupon": {"kind": "coupon", "value": 10, "channels": {"web", "app", "email"}},
	"story_how_we_make": {"kind": "content", "value": 1, "channels": {"web", "app"}},
	"referral_invite": {"kind": "offer", "value": 15, "channels": {"web", "app", "email"}},
	"signup_invite": {"kind": "offer", "value": 5, "channels": {"web", "app"}},
	"hero_brand_story": {"kind": "content", "value": 1, "channels": set()},
}

fallback := "hero_brand_story"

# --- Segments (segments.yaml) ----------------------------------------------

vip if input.customer.tier == "platinum"

vip if input.customer.ltv >= 5000

member if input.customer.tier != "none"

birthday_week if {
	input.customer.days_to_birthday >= 0
	input.customer.days_to_birthday <= 7
}

at_risk if input.customer.churn_risk >= 0.7

near_next_tier if {
	input.customer.tier in {"silver", "gold"}
	input.customer.points_to_next_tier > 0
	input.customer.points_to_next_tier <= 300
}

# --- Offer rules: one entry per matched rule -------------------------------

offers contains {"rule": "complaint_acknowledge", "touchpoint": "complaint_ack", "priority": 1000, "score": 1} if {
	input.customer.open_complaint
	input.customer.complaint_age_minutes < 30
}

offers contains {"rule": "complaint_escalate", "touchpoint": "complaint_escalated", "priority": 1000, "score": 1} if {
	input.customer.open_complaint
	input.customer.complaint_age_minutes >= 30
}

offers contains {"rule": "risk_verify", "touchpoint": "risk_verify_account", "priority": 1000, "score": 1} if {
	input.customer.risk_flag
}

offers contains {"rule": "birthday_week_gift", "touchpoint": "birthday_gift", "priority": 500, "score": 1} if {
	birthday_week
	member
}

offers contains {"rule": "churn_retention_offer", "touchpoint": "retention_offer_20", "priority": 400, "score": input.customer.churn_risk} if {
	input.customer.lifecycle in {"active", "lapsing"}
	at_risk
}

offers contains {"rule": "vip_members_early_access", "touchpoint": "vip_early_access", "priority": 200, "score": 1} if {
	vip
}

offers contains {"rule": "points_expiring_reminder", "touchpoint": "points_expiry_reminder", "priority": 200, "score": input.customer.points_expiring_30d / 100} if {
	input.customer.points_expiring_30d >= 100
}

offers contains {"rule": "near_next_tier_nudge", "touchpoint": "tier_nudge", "priority": 200, "score": 1} if {
	near_next_tier
}

offers contains {"rule": "welcome_first_order", "touchpoint": "first_order_coupon", "priority": 100, "score": 1} if {
	input.known
	input.customer.lifecycle == "new"
	input.customer.orders_total == 0
}

offers contains {"rule": "journey_awareness_story", "touchpoint": "story_how_we_make", "priority": 100, "score": 1} if {
	input.known
	input.customer.stage == "awareness"
}

offers contains {"rule": "journey_loyalty_referral", "touchpoint": "referral_invite", "priority": 100, "score": 1} if {
	input.customer.stage == "loyalty"
	input.customer.last_csat >= 4
}

offers contains {"rule": "anonymous_signup", "touchpoint": "signup_invite", "priority": 50, "score": 1} if {
	not input.known
}

# --- Suppress rules (policy.yaml): the kinds they hold back ----------------

promotions := {"offer", "coupon"}

# risk_hold_offers
suppressed_kinds contains kind if {
	input.customer.risk_flag
	some kind in promotions
}

# consent_marketing_required
suppressed_kinds contains kind if {
	input.known
	not input.customer.consent_marketing
	some kind in promotions
}

# complaint_hold_promotions
suppressed_kinds contains kind if {
	input.customer.open_complaint
	some kind in promotions
}

# angry_no_promotions
suppressed_kinds contains kind if {
	input.customer.emotion == "angry"
	some kind in promotions
}

# --- Arbitration ----------------------------------------------------------

fits_channel(tp) if count(tp.channels) == 0

fits_channel(tp) if input.context.channel in tp.channels

eligible(tp) if {
	fits_channel(tp)
	not tp.kind in suppressed_kinds
}

candidates contains {"touchpoint": o.touchpoint, "rule": o.rule, "priority": o.priority, "score": o.score * tp.value} if {
	some o in offers
	tp := touchpoints[o.touchpoint]
	eligible(tp)
}

# Rank by priority (desc), then score (desc), then touchpoint id (asc):
# arrays sort element by element.
ranked := sort([[0 - x.priority, 0 - x.score, x.touchpoint, x.rule, x.score] | some x in candidates])

decision := {"touchpoint": ranked[0][2], "rule": ranked[0][3], "score": ranked[0][4]} if count(ranked) > 0

decision := {"touchpoint": fallback, "fallback": true} if {
	count(candidates) == 0
	eligible(touchpoints[fallback])
}
