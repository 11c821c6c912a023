package demodata

// showcase pins customers whose numbers the README's examples use, so each
// demo rule has a named face whatever the seed. A pinned profile replaces the
// drawn one entirely; the draw still happens, so the customers after it are
// the same as without the pin.
var showcase = map[int]func(*profile){
	// Sofia: platinum VIP, loyal and happy, every consent given.
	7: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone, p.homeStore = "Sofia", "es", "Europe/Madrid", "s-madrid-01"
		p.preferredChannel, p.appInstalled = "app", true
		p.interests = []string{"fashion", "travel", "skincare"}
		p.signupDays = 1460
		p.stage, p.lifecycle = "loyalty", "active"
		p.tier, p.points, p.pointsToNextTier = "platinum", 3120, 0
		p.ltv, p.avgBasket, p.ordersTotal = 8420.5, 175.43, 48
		p.orders30d, p.orders90d, p.spend30d, p.spend90d, p.daysSinceLast = 2, 5, 362.1, 901.4, 6
		p.churnRisk, p.couponPropensity = 0.04, 0.22
		p.daysToBirthday, p.lastCSAT, p.emotion = 143, 5, "happy"
		p.consentSMS = true
	}),
	// Mei: abandoned a cart this week and likes a coupon; 210 points short of gold.
	42: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone, p.homeStore = "Mei", "zh", "Asia/Shanghai", "s-shanghai-01"
		p.preferredChannel, p.appInstalled = "app", true
		p.interests = []string{"running", "yoga"}
		p.signupDays = 420
		p.stage, p.lifecycle = "purchase", "active"
		p.tier, p.points, p.pointsToNextTier = "silver", 610, 210
		p.ltv, p.avgBasket, p.ordersTotal = 1290, 99.23, 13
		p.orders30d, p.orders90d, p.spend30d, p.spend90d, p.daysSinceLast = 1, 2, 84.5, 171.2, 12
		p.cartAbandon7d, p.cartValue, p.cartItems = 1, 89.9, 3
		p.churnRisk, p.couponPropensity = 0.18, 0.62
		p.daysToBirthday, p.lastCSAT, p.emotion = 64, 5, "happy"
	}),
	// Lukas: gold member whose birthday is in three days.
	101: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone, p.homeStore = "Lukas", "de", "Europe/Berlin", "s-berlin-01"
		p.preferredChannel = "email"
		p.interests = []string{"cycling", "coffee"}
		p.signupDays = 980
		p.stage, p.lifecycle = "use", "active"
		p.tier, p.points, p.pointsToNextTier = "gold", 1210, 2830
		p.ltv, p.avgBasket, p.ordersTotal = 2170, 72.33, 30
		p.orders30d, p.orders90d, p.spend30d, p.spend90d, p.daysSinceLast = 1, 3, 64.9, 221.7, 18
		p.churnRisk, p.couponPropensity = 0.12, 0.35
		p.daysToBirthday, p.lastCSAT = 3, 4
	}),
	// Jonas: risk-flagged while a big cart waits; offers are held.
	256: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone = "Jonas", "de", "Europe/Berlin"
		p.preferredChannel, p.appInstalled = "app", true
		p.interests = []string{"tech", "sneakers"}
		p.signupDays = 730
		p.stage, p.lifecycle = "use", "active"
		p.tier, p.points, p.pointsToNextTier = "gold", 1450, 2390
		p.ltv, p.avgBasket, p.ordersTotal = 2610, 186.43, 14
		p.orders30d, p.orders90d, p.spend30d, p.spend90d, p.daysSinceLast = 1, 2, 199, 371.5, 9
		p.cartAbandon7d, p.cartValue, p.cartItems = 1, 649, 2
		p.churnRisk, p.couponPropensity = 0.15, 0.55
		p.daysToBirthday = 211
		p.riskFlag = true
	}),
	// Claire: abandoned two carts but gave no marketing consent.
	314: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone, p.homeStore = "Claire", "fr", "Europe/Paris", "s-paris-01"
		p.interests = []string{"fashion", "beauty"}
		p.signupDays = 240
		p.stage, p.lifecycle = "consideration", "active"
		p.ltv, p.avgBasket, p.ordersTotal = 187.4, 62.47, 3
		p.orders30d, p.orders90d, p.spend30d, p.spend90d, p.daysSinceLast = 0, 1, 0, 58.9, 41
		p.cartAbandon7d, p.cartValue, p.cartItems = 2, 124.5, 3
		p.churnRisk, p.couponPropensity = 0.31, 0.71
		p.consentMarketing, p.consentEmail = false, false
	}),
	// Tom: gold member with an angry complaint opened 12 minutes ago.
	500: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone, p.homeStore = "Tom", "en", "Europe/London", "s-london-01"
		p.preferredChannel, p.appInstalled = "app", true
		p.interests = []string{"running", "outdoor"}
		p.signupDays = 1100
		p.stage, p.lifecycle = "use", "active"
		p.tier, p.points, p.pointsToNextTier = "gold", 1400, 1880
		p.ltv, p.avgBasket, p.ordersTotal = 3120, 120, 26
		p.orders30d, p.orders90d, p.spend30d, p.spend90d, p.daysSinceLast = 1, 2, 139, 248.5, 3
		p.churnRisk, p.couponPropensity = 0.27, 0.3
		p.daysToBirthday = 200
		p.openComplaint, p.complaintAgeMins, p.lastCSAT, p.emotion = true, 12, 2, "angry"
		p.consentSMS = true
	}),
	// Chiara: lapsing, four months since her last order, high churn risk.
	777: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone, p.homeStore = "Chiara", "it", "Europe/Rome", "s-milan-01"
		p.interests = []string{"yoga", "skincare", "home"}
		p.signupDays = 890
		p.stage, p.lifecycle = "use", "lapsing"
		p.tier, p.points, p.pointsToNextTier = "silver", 260, 860
		p.ltv, p.avgBasket, p.ordersTotal = 640.8, 80.1, 8
		p.daysSinceLast = 124
		p.churnRisk, p.couponPropensity = 0.86, 0.58
		p.daysToBirthday, p.lastCSAT = 97, 3
	}),
	// Daan: signed up four days ago, no order yet.
	1234: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone = "Daan", "nl", "Europe/Amsterdam"
		p.preferredChannel, p.appInstalled = "app", true
		p.interests = []string{"hiking", "outdoor"}
		p.signupDays = 4
		p.stage, p.lifecycle = "consideration", "new"
		p.churnRisk, p.couponPropensity = 0.3, 0.48
	}),
	// Pierre: churned more than a year ago; still reachable by email.
	1500: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone = "Pierre", "fr", "Europe/Paris"
		p.preferredChannel = "email"
		p.interests = []string{"travel"}
		p.signupDays = 1300
		p.stage, p.lifecycle = "use", "churned"
		p.tier, p.points, p.pointsToNextTier = "silver", 150, 1090
		p.ltv, p.avgBasket, p.ordersTotal = 410, 82, 5
		p.daysSinceLast = 402
		p.churnRisk, p.couponPropensity = 0.93, 0.4
		p.daysToBirthday = 288
	}),
	// Hannah: 420 points expire this month; prefers SMS and consented to it.
	2026: pinned(func(p *profile) {
		p.firstName, p.language, p.timezone, p.homeStore = "Hannah", "de", "Europe/Berlin", "s-hamburg-01"
		p.preferredChannel = "sms"
		p.interests = []string{"kitchen", "coffee", "home"}
		p.signupDays = 610
		p.stage, p.lifecycle = "use", "active"
		p.tier, p.points, p.pointsExpiring, p.pointsToNextTier = "silver", 780, 420, 540
		p.ltv, p.avgBasket, p.ordersTotal = 960, 68.57, 14
		p.orders30d, p.orders90d, p.spend30d, p.spend90d, p.daysSinceLast = 0, 1, 0, 74.2, 38
		p.churnRisk, p.couponPropensity = 0.21, 0.33
		p.daysToBirthday, p.lastCSAT = 152, 4
		p.consentSMS = true
	}),
}

// pinned returns a pin that resets a profile to a plain, consenting,
// purchase-free customer and then applies set.
func pinned(set func(*profile)) func(*profile) {
	return func(p *profile) {
		*p = profile{
			language:         "en",
			timezone:         "UTC",
			preferredChannel: "web",
			stage:            "awareness",
			lifecycle:        "new",
			tier:             "none",
			daysSinceLast:    -1,
			daysToBirthday:   -1,
			emotion:          "neutral",
			consentMarketing: true,
			consentEmail:     true,
		}
		set(p)
	}
}
