// Package demodata owns the synthetic customer population behind the demo:
// a deterministic generator of JSON Lines feature records whose features
// follow configs/features.yaml and whose distributions are correlated the way
// a real retail customer base is (loyal customers spend more, lapsing ones
// are likely to churn, a small share has no consent, a risk flag or an open
// complaint). A handful of showcase customers, used in the README's examples,
// are pinned to hand-picked profiles.
package demodata

import (
	"bufio"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
)

// Generate writes customers records, one JSON object per line:
//
//	{"id":"c-000001","features":{...}}
//
// Ids are c-%06d, counting from 1 (wider past 999,999). The output depends
// only on customers and seed.
func Generate(w io.Writer, customers int, seed uint64) error {
	if customers < 0 {
		return errors.New("demodata: customer count must not be negative")
	}
	g := &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	bw := bufio.NewWriterSize(w, 256<<10)
	buf := make([]byte, 0, 2048)
	var p profile
	for i := 1; i <= customers; i++ {
		g.fill(&p)
		if pin, ok := showcase[i]; ok {
			pin(&p)
		}
		buf = p.appendJSON(buf[:0], i)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// profile is one customer's features, mirroring the customer section of the
// schema. Day counters use -1 for "unknown" as the schema does.
type profile struct {
	firstName        string
	language         string
	timezone         string
	homeStore        string
	preferredChannel string
	appInstalled     bool
	interests        []string
	signupDays       int

	stage     string
	lifecycle string

	tier             string
	points           int
	pointsExpiring   int
	pointsToNextTier int
	ltv              float64
	avgBasket        float64

	ordersTotal   int
	orders30d     int
	orders90d     int
	spend30d      float64
	spend90d      float64
	daysSinceLast int

	cartAbandon7d int
	cartValue     float64
	cartItems     int

	churnRisk        float64
	couponPropensity float64

	daysToBirthday int

	openComplaint    bool
	complaintAgeMins int
	lastCSAT         int
	emotion          string
	riskFlag         bool

	consentMarketing bool
	consentEmail     bool
	consentSMS       bool
}

// region ties a time zone to a language, nearby stores and common first names.
type region struct {
	weight   int
	timezone string
	language string
	stores   []string
	names    []string
}

var regions = []region{
	{22, "Europe/Berlin", "de", []string{"s-berlin-01", "s-munich-01", "s-hamburg-01"},
		[]string{"Lukas", "Anna", "Leon", "Mia", "Felix", "Emma", "Jonas", "Lena", "Paul", "Hannah"}},
	{14, "Europe/Paris", "fr", []string{"s-paris-01", "s-lyon-01"},
		[]string{"Camille", "Louis", "Chloe", "Hugo", "Manon", "Lucas", "Ines", "Jules", "Claire", "Pierre"}},
	{16, "Europe/London", "en", []string{"s-london-01", "s-manchester-01"},
		[]string{"Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Grace", "Tom", "Freya"}},
	{9, "Europe/Madrid", "es", []string{"s-madrid-01", "s-barcelona-01"},
		[]string{"Sofia", "Hugo", "Lucia", "Mateo", "Martina", "Pablo", "Paula", "Alvaro", "Elena", "Diego"}},
	{8, "Europe/Rome", "it", []string{"s-milan-01", "s-rome-01"},
		[]string{"Giulia", "Leonardo", "Chiara", "Francesco", "Sofia", "Alessandro", "Aurora", "Lorenzo", "Giorgia", "Matteo"}},
	{7, "Europe/Amsterdam", "nl", []string{"s-amsterdam-01"},
		[]string{"Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Finn", "Sara", "Milan", "Noor"}},
	{12, "Asia/Shanghai", "zh", []string{"s-shanghai-01", "s-beijing-01"},
		[]string{"Mei", "Wei", "Jing", "Hao", "Yan", "Lei", "Xin", "Jun", "Ling", "Tao"}},
	{12, "America/New_York", "en", []string{"s-newyork-01", "s-boston-01"},
		[]string{"Liam", "Olivia", "Noah", "Emma", "James", "Charlotte", "Ethan", "Sophia", "Mason", "Harper"}},
}

var interestTags = []string{
	"running", "hiking", "outdoor", "fitness", "yoga", "cycling",
	"skincare", "beauty", "fashion", "sneakers",
	"home", "kitchen", "coffee", "tech", "travel", "kids",
}

var (
	stages   = []string{"awareness", "consideration", "purchase", "use", "loyalty"}
	stageWts = []int{10, 15, 15, 38, 22}

	lifecycles = []string{"new", "active", "lapsing", "churned"}
	// lifecycleWts[stage] weights lifecycles by journey stage: browsers are
	// mostly new, customers in use are active or drifting away, loyal ones
	// are overwhelmingly active.
	lifecycleWts = [][]int{
		{85, 0, 0, 15},   // awareness
		{70, 10, 10, 10}, // consideration
		{35, 55, 10, 0},  // purchase
		{0, 55, 25, 20},  // use
		{0, 80, 15, 5},   // loyalty
	}
	// memberPct[stage] is the share of loyalty programme members.
	memberPct = []float64{0.20, 0.35, 0.55, 0.75, 1.0}
	// abandonPct[stage] is the share who abandoned a cart this week.
	abandonPct = []float64{0.03, 0.15, 0.25, 0.08, 0.08}

	channels   = []string{"web", "app", "email", "sms", "store"}
	channelWts = []int{35, 30, 25, 5, 5}

	csatWts = []int{4, 6, 15, 35, 40} // scores 1..5 of surveyed customers
)

// Tier thresholds in lifetime points (one point per EUR spent); members
// below gold are silver.
const (
	goldMin     = 1500
	platinumMin = 5000
)

type generator struct {
	rng *rand.Rand
}

func (g *generator) chance(p float64) bool { return g.rng.Float64() < p }

// between returns a uniform integer in [lo, hi].
func (g *generator) between(lo, hi int) int { return lo + g.rng.IntN(hi-lo+1) }

// uniform returns a uniform float in [lo, hi).
func (g *generator) uniform(lo, hi float64) float64 { return lo + g.rng.Float64()*(hi-lo) }

// pick returns an index drawn with the given integer weights.
func (g *generator) pick(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := g.rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func (g *generator) pickRegion() *region {
	total := 0
	for i := range regions {
		total += regions[i].weight
	}
	n := g.rng.IntN(total)
	for i := range regions {
		if n < regions[i].weight {
			return &regions[i]
		}
		n -= regions[i].weight
	}
	return &regions[len(regions)-1]
}

// fill draws the next customer from the generator's source, overwriting
// every field of p.
func (g *generator) fill(p *profile) {
	rg := g.pickRegion()
	p.timezone = rg.timezone
	p.language = rg.language
	p.firstName = ""
	if g.chance(0.92) {
		p.firstName = rg.names[g.rng.IntN(len(rg.names))]
	}
	p.homeStore = ""
	if g.chance(0.55) {
		p.homeStore = rg.stores[g.rng.IntN(len(rg.stores))]
	}
	p.preferredChannel = channels[g.pick(channelWts)]
	p.appInstalled = p.preferredChannel == "app" || g.chance(0.3)

	p.interests = p.interests[:0]
	for n := g.pick([]int{15, 30, 30, 15, 10}); len(p.interests) < n; {
		tag := interestTags[g.rng.IntN(len(interestTags))]
		if !containsStr(p.interests, tag) {
			p.interests = append(p.interests, tag)
		}
	}

	// Journey and lifecycle drive everything that follows.
	st := g.pick(stageWts)
	p.stage = stages[st]
	lc := g.pick(lifecycleWts[st])
	p.lifecycle = lifecycles[lc]

	// Orders: nothing yet for most new customers, a lot for loyal ones.
	switch {
	case p.lifecycle == "new" && (st == 0 || g.chance(0.7)):
		p.ordersTotal = 0
	case p.lifecycle == "new":
		p.ordersTotal = 1
	case st == 4: // loyalty
		p.ordersTotal = g.between(8, 60)
	case st == 3: // use
		p.ordersTotal = g.between(2, 14)
	case p.lifecycle == "churned":
		p.ordersTotal = g.between(1, 8)
	default:
		p.ordersTotal = g.between(1, 6)
	}

	p.avgBasket = 0
	p.ltv = 0
	if p.ordersTotal > 0 {
		basket := math.Exp(math.Log(55) + 0.5*g.rng.NormFloat64())
		if st == 4 {
			basket *= 1.3
		}
		p.avgBasket = round2(math.Min(basket, 900))
		p.ltv = round2(float64(p.ordersTotal) * p.avgBasket * g.uniform(0.9, 1.1))
	}

	// Recency follows the lifecycle.
	switch {
	case p.ordersTotal == 0:
		p.daysSinceLast = -1
	case p.lifecycle == "new":
		p.daysSinceLast = g.between(0, 30)
	case p.lifecycle == "active":
		p.daysSinceLast = min(int(g.rng.ExpFloat64()*14), 45)
	case p.lifecycle == "lapsing":
		p.daysSinceLast = g.between(60, 180)
	default: // churned
		p.daysSinceLast = g.between(181, 900)
	}

	// Frequency windows, consistent with recency: an order in the last 30
	// days is also one in the last 90.
	p.orders30d, p.orders90d = 0, 0
	if p.daysSinceLast >= 0 && p.daysSinceLast <= 90 {
		extra := int(float64(p.ordersTotal) / 12 * g.uniform(0, 2))
		p.orders90d = min(p.ordersTotal, 1+extra)
		if p.daysSinceLast <= 30 {
			p.orders30d = max(1, p.orders90d/2)
		}
	}
	p.spend30d = round2(float64(p.orders30d) * p.avgBasket * g.uniform(0.8, 1.2))
	p.spend90d = round2(math.Max(p.spend30d, float64(p.orders90d)*p.avgBasket*g.uniform(0.8, 1.2)))

	switch {
	case p.ordersTotal == 0:
		p.signupDays = min(int(g.rng.ExpFloat64()*15), 90)
	case p.lifecycle == "new":
		p.signupDays = p.daysSinceLast + g.between(0, 45)
	default:
		p.signupDays = max(p.daysSinceLast, 0) + g.between(60, 400) + p.ordersTotal*g.between(10, 40)
	}

	// Loyalty programme: members earn a point per EUR; tier follows
	// lifetime points.
	p.tier, p.points, p.pointsExpiring, p.pointsToNextTier = "none", 0, 0, 0
	if g.chance(memberPct[st]) {
		life := int(p.ltv)
		switch {
		case life >= platinumMin:
			p.tier = "platinum"
		case life >= goldMin:
			p.tier = "gold"
			p.pointsToNextTier = platinumMin - life
		default:
			p.tier = "silver"
			p.pointsToNextTier = goldMin - life
		}
		p.points = int(float64(life) * g.uniform(0.2, 0.7))
		if p.points >= 100 && g.chance(0.25) {
			p.pointsExpiring = int(float64(p.points) * g.uniform(0.1, 0.5))
		}
	}

	// Cart: some carry a cart, about one in ten abandoned one this week.
	p.cartAbandon7d, p.cartItems, p.cartValue = 0, 0, 0
	abandoned := g.chance(abandonPct[st])
	if abandoned || g.chance(0.12) {
		p.cartItems = g.pick([]int{0, 35, 25, 18, 12, 10})
		p.cartValue = round2(float64(p.cartItems) * g.uniform(12, 70))
		if abandoned {
			p.cartAbandon7d = 1 + g.pick([]int{70, 22, 8})
		}
	}

	// Scores.
	switch p.lifecycle {
	case "new":
		p.churnRisk = g.uniform(0.15, 0.5)
	case "active":
		p.churnRisk = g.uniform(0.02, 0.35)
	case "lapsing":
		p.churnRisk = g.uniform(0.55, 0.95)
	default:
		p.churnRisk = g.uniform(0.8, 0.99)
	}
	if p.tier == "gold" || p.tier == "platinum" {
		p.churnRisk *= 0.85
	}
	p.churnRisk = round2(p.churnRisk)
	cp := g.uniform(0.05, 0.65)
	if p.lifecycle == "new" || p.lifecycle == "lapsing" {
		cp += 0.15
	}
	if p.cartAbandon7d > 0 {
		cp += 0.1
	}
	p.couponPropensity = round2(math.Min(cp, 0.98))

	// Birthday: most members give it, fewer non-members.
	p.daysToBirthday = -1
	onFile := 0.6
	if p.tier != "none" {
		onFile = 0.95
	}
	if g.chance(onFile) {
		p.daysToBirthday = g.between(0, 364)
	}

	// Service: ~3% have an open complaint, and they are rarely happy.
	p.openComplaint = g.chance(0.03)
	p.complaintAgeMins, p.lastCSAT = 0, 0
	if p.openComplaint {
		if g.chance(0.35) {
			p.complaintAgeMins = g.between(1, 29)
		} else {
			p.complaintAgeMins = g.between(30, 4320)
		}
		p.emotion = []string{"angry", "frustrated", "neutral"}[g.pick([]int{40, 40, 20})]
		if g.chance(0.4) {
			p.lastCSAT = g.between(1, 3)
		}
	} else {
		p.emotion = []string{"neutral", "happy", "frustrated", "angry"}[g.pick([]int{80, 15, 4, 1})]
		if g.chance(0.45) {
			p.lastCSAT = 1 + g.pick(csatWts)
		}
	}
	p.riskFlag = g.chance(0.01)

	// Consent: ~15% refuse marketing; channel consent mostly follows it.
	p.consentMarketing = g.chance(0.85)
	if p.consentMarketing {
		p.consentEmail = g.chance(0.85)
		p.consentSMS = g.chance(0.4)
	} else {
		p.consentEmail = g.chance(0.3)
		p.consentSMS = g.chance(0.1)
	}
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// appendJSON appends the record for customer number n and a newline.
func (p *profile) appendJSON(b []byte, n int) []byte {
	b = append(b, `{"id":"c-`...)
	for digits, v := 1, n; digits < 6; digits++ {
		v /= 10
		if v == 0 {
			b = append(b, '0')
		}
	}
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `","features":{`...)

	b = appendStr(b, "first_name", p.firstName)
	b = appendStr(b, "language", p.language)
	b = appendStr(b, "timezone", p.timezone)
	b = appendStr(b, "home_store", p.homeStore)
	b = appendStr(b, "preferred_channel", p.preferredChannel)
	b = appendBool(b, "app_installed", p.appInstalled)
	b = appendKey(b, "interests")
	b = append(b, '[')
	for i, tag := range p.interests {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, tag)
	}
	b = append(b, ']')
	b = appendInt(b, "signup_days", p.signupDays)

	b = appendStr(b, "stage", p.stage)
	b = appendStr(b, "lifecycle", p.lifecycle)

	b = appendStr(b, "tier", p.tier)
	b = appendInt(b, "points", p.points)
	b = appendInt(b, "points_expiring_30d", p.pointsExpiring)
	b = appendInt(b, "points_to_next_tier", p.pointsToNextTier)
	b = appendNum(b, "ltv", p.ltv)
	b = appendNum(b, "avg_basket", p.avgBasket)

	b = appendInt(b, "orders_total", p.ordersTotal)
	b = appendInt(b, "orders_30d", p.orders30d)
	b = appendInt(b, "orders_90d", p.orders90d)
	b = appendNum(b, "spend_30d", p.spend30d)
	b = appendNum(b, "spend_90d", p.spend90d)
	b = appendInt(b, "days_since_last_purchase", p.daysSinceLast)

	b = appendInt(b, "cart_abandon_7d", p.cartAbandon7d)
	b = appendNum(b, "cart_value", p.cartValue)
	b = appendInt(b, "cart_items", p.cartItems)

	b = appendNum(b, "churn_risk", p.churnRisk)
	b = appendNum(b, "coupon_propensity", p.couponPropensity)

	b = appendInt(b, "days_to_birthday", p.daysToBirthday)

	b = appendBool(b, "open_complaint", p.openComplaint)
	b = appendInt(b, "complaint_age_minutes", p.complaintAgeMins)
	b = appendInt(b, "last_csat", p.lastCSAT)
	b = appendStr(b, "emotion", p.emotion)
	b = appendBool(b, "risk_flag", p.riskFlag)

	b = appendBool(b, "consent_marketing", p.consentMarketing)
	b = appendBool(b, "consent_email", p.consentEmail)
	b = appendBool(b, "consent_sms", p.consentSMS)
	return append(b, "}}\n"...)
}

// appendKey appends "key": preceded by a comma unless it opens the object.
func appendKey(b []byte, key string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendStr(b []byte, key, v string) []byte {
	return appendString(appendKey(b, key), v)
}

func appendInt(b []byte, key string, v int) []byte {
	return strconv.AppendInt(appendKey(b, key), int64(v), 10)
}

func appendNum(b []byte, key string, v float64) []byte {
	return strconv.AppendFloat(appendKey(b, key), v, 'f', -1, 64)
}

func appendBool(b []byte, key string, v bool) []byte {
	return strconv.AppendBool(appendKey(b, key), v)
}

// appendString appends s as a JSON string. The generator's strings come from
// fixed ASCII tables; quotes, backslashes and control characters are escaped
// all the same so a new table entry cannot break the output.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
