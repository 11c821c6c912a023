package server

import "github.com/prometheus/client_golang/prometheus"

// TriggerStats describes the triggers of this node for /metrics.
type TriggerStats struct {
	// Pending is the firings waiting or claimed in the shared queue; -1
	// when the queue could not be asked.
	Pending                                                                    int64
	Scheduled, Cancelled, Fired, Delivered, Failed, Deferred, ScheduleFailures uint64
	// Held counts firings that sent nothing, by reason.
	Held map[string]uint64
	// Retries and DeadLettered sum the webhook deliveries' counters.
	Retries, DeadLettered uint64
}

type triggerCollector struct {
	stats                                                    func() TriggerStats
	pending, counts, held, retries, deadLettered, scheduleFn *prometheus.Desc
}

func newTriggerCollector(stats func() TriggerStats) *triggerCollector {
	return &triggerCollector{
		stats: stats,
		pending: prometheus.NewDesc("touchpoint_triggers_pending",
			"Trigger firings waiting or claimed in the queue (every node's, when the queue is Redis).", nil, nil),
		counts: prometheus.NewDesc("touchpoint_triggers_total",
			"Trigger firings by what happened: scheduled, cancelled, fired, delivered, failed, deferred (quiet hours).", []string{"outcome"}, nil),
		held: prometheus.NewDesc("touchpoint_triggers_held_total",
			"Fired triggers that sent nothing, by reason: condition_false, nothing_chosen, unknown_trigger.", []string{"reason"}, nil),
		retries: prometheus.NewDesc("touchpoint_triggers_delivery_retries_total",
			"Webhook delivery attempts beyond the first.", nil, nil),
		deadLettered: prometheus.NewDesc("touchpoint_triggers_dead_lettered_total",
			"Triggered messages no retry could deliver, kept as dead letters.", nil, nil),
		scheduleFn: prometheus.NewDesc("touchpoint_triggers_schedule_failures_total",
			"Trigger starts or cancellations of applied events that could not be queued.", nil, nil),
	}
}

func (c *triggerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.counts, c.held, c.retries, c.deadLettered, c.scheduleFn} {
		ch <- d
	}
}

func (c *triggerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	if st.Pending >= 0 {
		send(ch, c.pending, prometheus.GaugeValue, float64(st.Pending))
	}
	for _, o := range []struct {
		name string
		n    uint64
	}{{"scheduled", st.Scheduled}, {"cancelled", st.Cancelled}, {"fired", st.Fired}, {"delivered", st.Delivered}, {"failed", st.Failed}, {"deferred", st.Deferred}} {
		send(ch, c.counts, prometheus.CounterValue, float64(o.n), o.name)
	}
	for reason, n := range st.Held {
		send(ch, c.held, prometheus.CounterValue, float64(n), reason)
	}
	send(ch, c.retries, prometheus.CounterValue, float64(st.Retries))
	send(ch, c.deadLettered, prometheus.CounterValue, float64(st.DeadLettered))
	send(ch, c.scheduleFn, prometheus.CounterValue, float64(st.ScheduleFailures))
}
