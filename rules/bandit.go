package rules

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bandit arbitration defaults: a prior worth about twenty impressions at a
// 5% click rate, so that one early click does not crown a touchpoint, and
// a floor of 5% of the band's traffic for each candidate.
const (
	defaultBanditAlpha    = 1
	defaultBanditBeta     = 20
	defaultBanditMinShare = 0.05
	// maxBanditSegments bounds the posteriors a placement keeps per
	// touchpoint; segments come from a feature's declared values.
	maxBanditSegments = 64
)

// modeIs reports whether an arbitration mapping says mode: want.
func modeIs(n *yaml.Node, want string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "mode" {
			return n.Content[i+1].Value == want
		}
	}
	return false
}

var banditKeys = []string{"mode", "reward", "prior", "min_share", "by"}

// bandit reads a placement's arbitration: {mode: thompson, …}.
func (r *reader) bandit(n *yaml.Node, what string, schema *Schema) *Bandit {
	b := &Bandit{Reward: "click", PriorAlpha: defaultBanditAlpha, PriorBeta: defaultBanditBeta, MinShare: defaultBanditMinShare, By: -1}
	r.mapping(n, what, banditKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "reward":
			reward, _ := r.str(v, what+".reward")
			if reward != "click" && reward != "conversion" {
				r.errf(v, "%s.reward must be click or conversion, got %q", what, reward)
			}
			b.Reward = reward
		case "prior":
			r.mapping(v, what+".prior", priorKeys, func(key string, _, pv *yaml.Node) {
				x, ok := r.number(pv, what+".prior."+key)
				if ok && !(x > 0 && x <= 1e6) {
					r.errf(pv, "%s.prior.%s must be above 0 and at most 1000000", what, key)
				}
				if key == "alpha" {
					b.PriorAlpha = x
				} else {
					b.PriorBeta = x
				}
			})
		case "min_share":
			x, ok := r.number(v, what+".min_share")
			if ok && !(x >= 0 && x <= 0.5) {
				r.errf(v, "%s.min_share must be between 0 and 0.5 (a share of the traffic per candidate)", what)
			}
			b.MinShare = x
		case "by":
			src, _ := r.str(v, what+".by")
			name, ok := strings.CutPrefix(strings.TrimSpace(src), "customer.")
			fi := schema.CustomerField(name)
			if !ok || fi < 0 {
				r.errf(v, "%s.by must name a customer feature, as customer.tier, got %q%s", what, src, suggest(name, fieldNames(schema.Customer)))
				return
			}
			f := &schema.Customer[fi]
			switch {
			case f.Type == TypeBool:
				b.Segments = []string{"false", "true"}
			case f.Type == TypeString && len(f.Values) > 0 && len(f.Values) <= maxBanditSegments:
				b.Segments = f.Values
			default:
				r.errf(v, "%s.by: customer.%s must be a bool or a string with at most %d declared values, so that the posteriors per segment stay few", what, name, maxBanditSegments)
				return
			}
			b.By, b.ByName = fi, name
		}
	})
	return b
}
