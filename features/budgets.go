package features

import (
	"context"
	"sync"
)

// MemoryBudgets keeps budgets in this process. It is exact for one node —
// the embedded store's setting — and is not shared: several nodes need a
// shared store (Redis) for their budgets.
type MemoryBudgets struct {
	mu    sync.Mutex
	total map[string]int64
	daily map[budgetDay]int64
}

type budgetDay struct {
	touchpoint string
	day        int32
}

// NewMemoryBudgets returns empty budgets: nothing has been issued yet.
func NewMemoryBudgets() *MemoryBudgets {
	return &MemoryBudgets{total: map[string]int64{}, daily: map[budgetDay]int64{}}
}

// Consume issues one unit if neither the total nor the day's limit is used up.
func (b *MemoryBudgets) Consume(_ context.Context, touchpoint string, day int32, total, perDay int64) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := budgetDay{touchpoint, day}
	if total > 0 && b.total[touchpoint] >= total || perDay > 0 && b.daily[key] >= perDay {
		return false, nil
	}
	b.total[touchpoint]++
	b.daily[key]++
	return true, nil
}
