package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/touchpoint-dev/touchpoint/features"
)

// overlayCollector exposes what the embedded store's overlay holds and what
// its memory bounds dropped.
type overlayCollector struct {
	stats                                          func() features.OverlayStats
	customers, bytes, erased, eventIDs             *prometheus.Desc
	evictedCustomers, evictedEventIDs, droppedCtrs *prometheus.Desc
}

func newOverlayCollector(stats func() features.OverlayStats) *overlayCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &overlayCollector{
		stats:     stats,
		customers: d("touchpoint_overlay_customers", "Customers the embedded store holds writes for (features, consent, counters)."),
		bytes:     d("touchpoint_overlay_bytes", "Estimated memory of those customers, bounded by features.overlay.max_bytes."),
		erased:    d("touchpoint_overlay_erased_customers", "Customers of the customers file erased and kept hidden."),
		eventIDs:  d("touchpoint_overlay_event_ids", "Event ids remembered to count retried batches once, bounded by features.overlay.max_event_ids."),
		evictedCustomers: d("touchpoint_overlay_customers_evicted_total",
			"Customers whose writes were dropped, least recently written first, to stay within features.overlay.max_bytes."),
		evictedEventIDs: d("touchpoint_overlay_event_ids_evicted_total",
			"Event ids forgotten, oldest first, to stay within features.overlay.max_event_ids."),
		droppedCtrs: d("touchpoint_overlay_counters_dropped_total",
			"Event counters dropped or not counted to stay within features.overlay.max_counters_per_customer."),
	}
}

func (c *overlayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.customers, c.bytes, c.erased, c.eventIDs, c.evictedCustomers, c.evictedEventIDs, c.droppedCtrs} {
		ch <- d
	}
}

func (c *overlayCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	send(ch, c.customers, prometheus.GaugeValue, float64(st.Customers))
	send(ch, c.bytes, prometheus.GaugeValue, float64(st.Bytes))
	send(ch, c.erased, prometheus.GaugeValue, float64(st.ErasedCustomers))
	send(ch, c.eventIDs, prometheus.GaugeValue, float64(st.EventIDs))
	send(ch, c.evictedCustomers, prometheus.CounterValue, float64(st.EvictedCustomers))
	send(ch, c.evictedEventIDs, prometheus.CounterValue, float64(st.EvictedEventIDs))
	send(ch, c.droppedCtrs, prometheus.CounterValue, float64(st.DroppedCounters))
}
