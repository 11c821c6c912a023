package rules

import (
	"github.com/expr-lang/expr/vm"

	"github.com/touchpoint-dev/touchpoint/features"
)

func numberValue(f float64) features.Value { return features.Number(f) }

func runProgram(p *vm.Program, env *Env) (any, error) {
	var m vm.VM
	return m.Run(p, env.Value())
}
