package loadtest

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRates(t *testing.T) {
	for in, want := range map[string][]float64{
		"20000":               {20000},
		"20k":                 {20000},
		"2.5k":                {2500},
		"1000,5000, 20000":    {1000, 5000, 20000},
		"5000:40000:5000":     {5000, 10000, 15000, 20000, 25000, 30000, 35000, 40000},
		"5k:40k:5k":           {5000, 10000, 15000, 20000, 25000, 30000, 35000, 40000},
		"1000:2500:1000":      {1000, 2000},
		"100:100:1":           {100},
		" 0.5 ":               {0.5},
		"1000:1000.0000001:1": {1000},
	} {
		got, err := ParseRates(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseRates(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":                  "want RATE, R1,R2,… or FROM:TO:STEP",
		"fast":              `"fast" is not a number of requests per second`,
		"5000:40000":        "a range is FROM:TO:STEP, e.g. 5000:40000:5000",
		"1:2:3:4":           "a range is FROM:TO:STEP",
		"40000:5000:5000":   "TO (5000) is below FROM (40000)",
		"5000:40000:0":      "rate 0 is out of range",
		"-5":                "rate -5 is out of range",
		"1000,":             `"" is not a number`,
		"1:100000:1":        "more than the 200 allowed",
		"5000:40000:-5000":  "out of range",
		"99999999999":       "out of range",
		"NaN":               "not a number",
		"5000:x:5000":       `"x" is not a number`,
		"1000:2000:1000:":   "a range is FROM:TO:STEP",
		"20000 req/s":       "not a number",
		"10000:20000:1e-12": "more than the 200 allowed",
	} {
		_, err := ParseRates(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseRates(%q) error = %v; want one line containing %q", in, err, want)
		}
	}
}

func TestParseSLO(t *testing.T) {
	slo, err := ParseSLO("p99=1ms")
	if err != nil || len(slo.Terms) != 1 || slo.Terms[0] != (SLOTerm{99, time.Millisecond}) || slo.MaxErrorRatio != defaultMaxErrorRatio {
		t.Fatalf("p99=1ms: %+v, %v", slo, err)
	}
	slo, err = ParseSLO("p99.9=5ms")
	if err != nil || slo.Terms[0] != (SLOTerm{99.9, 5 * time.Millisecond}) {
		t.Fatalf("p99.9=5ms: %+v, %v", slo, err)
	}
	slo, err = ParseSLO("p50=200us, p99=1ms ,max=50ms,errors=1%")
	want := []SLOTerm{{50, 200 * time.Microsecond}, {99, time.Millisecond}, {100, 50 * time.Millisecond}}
	if err != nil || !reflect.DeepEqual(slo.Terms, want) || slo.MaxErrorRatio != 0.01 {
		t.Fatalf("list: %+v, %v", slo, err)
	}
	if s := slo.String(); s != "p50=200µs,p99=1ms,max=50ms,errors=1%" {
		t.Errorf("String() = %q", s)
	}
	if again, err := ParseSLO(slo.String()); err != nil || !reflect.DeepEqual(again, slo) {
		t.Errorf("String does not parse back: %+v, %v", again, err)
	}
	if slo, err := ParseSLO(""); err != nil || len(slo.Terms) != 0 {
		t.Errorf("empty SLO: %+v, %v", slo, err)
	}
	for in, want := range map[string]string{
		"p99":        "not NAME=VALUE",
		"p101=1ms":   `"p101" is not a percentile`,
		"p0=1ms":     `"p0" is not a percentile`,
		"q99=1ms":    `unknown term "q99"`,
		"p99=fast":   "p99=fast needs a positive duration",
		"p99=-1ms":   "needs a positive duration",
		"p99=1":      "needs a positive duration",
		"errors=5":   "must be a percentage",
		"errors=-1%": "must be a percentage",
	} {
		_, err := ParseSLO(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSLO(%q) error = %v; want %q", in, err, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tr := &Traffic{}
	ok := DefaultConfig()
	ok.URL, ok.Duration, ok.Traffic = "http://127.0.0.1:8080", time.Second, tr
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, tc := range map[string]struct {
		mut  func(*Config)
		want string
	}{
		"no end":       {func(c *Config) { c.Duration = 0 }, "set --duration or --requests"},
		"no url":       {func(c *Config) { c.URL = "" }, "a target URL is required"},
		"bad scheme":   {func(c *Config) { c.URL = "ftp://x" }, "not an http:// or https:// URL"},
		"no host":      {func(c *Config) { c.URL = "http://" }, "not an http:// or https:// URL"},
		"conns":        {func(c *Config) { c.Connections = 0 }, "--connections must be between 1"},
		"timeout":      {func(c *Config) { c.Timeout = 0 }, "--timeout must be positive"},
		"customers":    {func(c *Config) { c.Customers = 0 }, "--customers must be at least 1"},
		"closed":       {func(c *Config) { c.Mode = Closed }, "--concurrency must be between 1"},
		"find no slo":  {func(c *Config) { c.FindMax = true }, "--find-max needs an --slo"},
		"find closed":  {func(c *Config) { c.Mode, c.Concurrency, c.FindMax = Closed, 2, true }, "cannot be combined with --concurrency"},
		"find steps":   {func(c *Config) { c.FindMax, c.Rates = true, []float64{1, 2} }, "one starting --rate"},
		"zero rate":    {func(c *Config) { c.Rates = []float64{0} }, "rate 0 is out of range"},
		"no traffic":   {func(c *Config) { c.Traffic = nil }, "traffic description is required"},
		"unknown mode": {func(c *Config) { c.Mode = "half" }, `mode must be "open" or "closed"`},
		"run id quote": {func(c *Config) { c.RunID = `a"b` }, "may hold only letters"},
		"run id long":  {func(c *Config) { c.RunID = strings.Repeat("r", 80) }, "is longer than"},
	} {
		c := ok
		tc.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for us, want := range map[int64]string{0: "0µs", 62: "62µs", 999: "999µs", 1000: "1.00ms", 1240: "1.24ms", 21200: "21.2ms", 999_999: "1000ms", 112_200: "112ms", 1_500_000: "1.50s"} {
		if got := fmtUS(us); got != want {
			t.Errorf("fmtUS(%d) = %q, want %q", us, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := fmtInt(n); got != want {
			t.Errorf("fmtInt(%d) = %q, want %q", n, got, want)
		}
	}
	for us, want := range map[float64]string{20: "20µs", 1000: "1ms", 2500: "2.5ms", 1e6: "1s", 5e7: "50s"} {
		if got := fmtCompactUS(us); got != want {
			t.Errorf("fmtCompactUS(%g) = %q, want %q", us, got, want)
		}
	}
}
