package rules

import "maps"

// The keys each part of a rule file may have. The loader refuses any
// other key with a "did you mean"; KeysByPath lists them for the JSON
// Schema of rule files (schemas/rules.schema.json), whose test checks that
// the two agree.
var (
	fileKeys           = []string{"placements", "segments", "touchpoints", "rules", "models", "experiments", "policy", "triggers", "deliveries"}
	placementKeys      = []string{"id", "description", "count", "max_count", "fallback", "arbitration"}
	arbitrationKeys    = []string{"mode", "score"}
	priorKeys          = []string{"alpha", "beta"}
	touchpointKeys     = []string{"id", "kind", "description", "channels", "placements", "value", "content", "cap", "budget", "attributes", "propensity", "lever"}
	ruleKeys           = []string{"id", "description", "when", "offer", "suppress", "priority", "score", "active", "tests", "cap", "propensity", "lever"}
	fixtureKeys        = []string{"name", "customer", "context", "now", "placements", "expect", "history", "consent", "variants", "model", "touchpoint", "expect_score", "tolerance"}
	modelFixtureKeys   = []string{"name", "customer", "context", "now", "touchpoint", "expect_score", "tolerance"}
	historyKeys        = []string{"touchpoint", "event", "count", "days_ago", "channel", "rule"}
	capKeys            = []string{"count", "per", "on"}
	budgetKeys         = []string{"total", "per_day"}
	scheduleKeys       = []string{"from", "until", "days", "hours", "timezone"}
	policyKeys         = []string{"caps", "quiet_hours", "consent"}
	policyCapExtraKeys = []string{"kind", "channel"}
	consentKeys        = []string{"kinds", "channels", "features"}
	quietHoursKeys     = []string{"channels", "hours", "timezone_feature", "timezone"}
	modelTermKeys      = []string{"input", "weight", "log1p", "mean", "std", "one_hot", "buckets"}
	bucketKeys         = []string{"bounds", "weights"}
	triggerKeys        = []string{"id", "description", "on", "when", "delay", "unless", "placement", "channel", "deliver", "tests"}
	triggerFixtureKeys = []string{"name", "customer", "now", "events", "expect_sent", "expect_at"}
	triggerEventKeys   = []string{"name", "properties", "at"}
	deliveryKeys       = []string{"id", "webhook", "redis_stream"}
	webhookKeys        = []string{"url", "secret_env", "timeout", "max_attempts", "backoff_max"}
	streamKeys         = []string{"stream", "maxlen"}
)

// KeysByPath maps each part of a rule file, as a path of keys ("[]" for
// the items of a list), to the keys it may have. The caller gets its own
// copy.
func KeysByPath() map[string][]string {
	m := map[string][]string{
		"":                                    fileKeys,
		"placements[]":                        placementKeys,
		"placements[].arbitration (score)":    arbitrationKeys,
		"placements[].arbitration (thompson)": banditKeys,
		"placements[].arbitration.prior":      priorKeys,
		"touchpoints[]":                       touchpointKeys,
		"touchpoints[].cap":                   capKeys,
		"touchpoints[].budget":                budgetKeys,
		"rules[]":                             ruleKeys,
		"rules[].cap":                         capKeys,
		"rules[].active":                      scheduleKeys,
		"rules[].tests[]":                     fixtureKeys,
		"rules[].tests[].history[]":           historyKeys,
		"experiments[]":                       experimentKeys,
		"experiments[].active":                scheduleKeys,
		"models[]":                            modelKeys,
		"models[].terms[]":                    modelTermKeys,
		"models[].terms[].buckets":            bucketKeys,
		"models[].tests[]":                    modelFixtureKeys,
		"policy":                              policyKeys,
		"policy.caps[]":                       append(append([]string{}, capKeys...), policyCapExtraKeys...),
		"policy.quiet_hours":                  quietHoursKeys,
		"policy.consent":                      consentKeys,
		"triggers[]":                          triggerKeys,
		"triggers[].tests[]":                  triggerFixtureKeys,
		"triggers[].tests[].events[]":         triggerEventKeys,
		"deliveries[]":                        deliveryKeys,
		"deliveries[].webhook":                webhookKeys,
		"deliveries[].redis_stream":           streamKeys,
	}
	out := maps.Clone(m)
	for k, v := range out {
		out[k] = append([]string(nil), v...)
	}
	return out
}
