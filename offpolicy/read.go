package offpolicy

import (
	"io"

	"github.com/touchpoint-dev/touchpoint/decisionlog/logread"
)

// Rewards reads events (JSON Lines of the events API's event objects) and
// returns, per decision id and touchpoint, whether an event of type
// reward (click, conversion) followed. Events without a decision_id
// cannot be attributed and are counted in unattributed.
func Rewards(r io.Reader, reward string) (got map[[2]string]bool, unattributed int, err error) {
	got = map[[2]string]bool{}
	err = logread.ReadEvents(r, func(line int, ev *logread.Event) error {
		if ev.Type != reward {
			return nil
		}
		if ev.DecisionID == "" {
			unattributed++
			return nil
		}
		got[[2]string{ev.DecisionID, ev.Touchpoint}] = true
		return nil
	})
	return got, unattributed, err
}
