package models

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Error is a problem in a model file, at a 1-based line and column when
// Line > 0. Its Error is the message alone: callers that know the file
// add its name and the position.
type Error struct {
	Line, Col int
	Message   string
}

func (e *Error) Error() string { return e.Message }

// MaxFileBytes is the largest model file ReadFile reads.
const MaxFileBytes = 64 << 20

// ReadFile reads a model file of type XGBoost, LightGBM or Logistic (a
// spec in JSON or YAML, see ReadLogistic). A problem in the file is an
// *Error.
func ReadFile(typ, path string) (*Model, error) {
	var read func([]byte) (*Model, error)
	switch typ {
	case XGBoost:
		read = ReadXGBoost
	case LightGBM:
		read = ReadLightGBM
	case Logistic:
		read = ReadLogistic
	default:
		return nil, fmt.Errorf("unknown model type %q (use %s)", typ, strings.Join(Types, ", "))
	}
	data, err := ReadBytes(path)
	if err != nil {
		return nil, err
	}
	return read(data)
}

// ReadBytes reads a model file of at most MaxFileBytes.
func ReadBytes(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB, the most a model file may be", path, MaxFileBytes>>20)
	}
	return data, nil
}

// LogisticSpec is a logistic regression written inline: the margin is
// Intercept plus the sum of its terms; Predict returns sigmoid(margin).
type LogisticSpec struct {
	Intercept float64
	Terms     []Term
}

// Term is one term of a logistic regression over input Input. A missing
// input contributes 0 (what mean imputation before standardisation gives).
//
// A numeric term contributes Weight × t(x), where t applies, in order,
// Log1p when set and standardisation (x-Mean)/Std when Std != 0; a value
// the transform cannot take (log1p below -1) contributes 0 like a missing
// one. A one-hot term (Categories set) reads a string input and
// contributes CategoryWeights[k] when the value is Categories[k], 0 for
// other values. A bucket term (Bounds set, ascending) contributes
// BucketWeights[k] where k is the number of bounds <= x;
// len(BucketWeights) == len(Bounds)+1.
type Term struct {
	Input  string
	Weight float64
	Log1p  bool
	Mean   float64
	Std    float64

	Categories      []string
	CategoryWeights []float64

	Bounds        []float64
	BucketWeights []float64
}
