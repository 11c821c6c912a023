package models

import "errors"

// Error is a problem in a model file, at a 1-based line and column when
// Line > 0.
type Error struct {
	Line, Col int
	Message   string
}

func (e *Error) Error() string { return e.Message }

var errUnimplemented = errors.New("not implemented yet")

// MaxFileBytes is the largest model file ReadFile reads.
const MaxFileBytes = 64 << 20

// ReadFile reads a model file of type XGBoost or LightGBM.
func ReadFile(typ, path string) (*Model, error) { return nil, errUnimplemented }

// ReadXGBoost reads the JSON model format of XGBoost's Booster.save_model.
func ReadXGBoost(data []byte) (*Model, error) { return nil, errUnimplemented }

// ReadLightGBM reads LightGBM's text model format.
func ReadLightGBM(data []byte) (*Model, error) { return nil, errUnimplemented }

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
// Log1p when set and standardisation (x-Mean)/Std when Std != 0.
// A one-hot term (Categories set) reads a string input and contributes
// CategoryWeights[k] when the value is Categories[k], 0 for other values.
// A bucket term (Bounds set, ascending) contributes BucketWeights[k] where
// k is the number of bounds <= x; len(BucketWeights) == len(Bounds)+1.
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

// NewLogistic checks spec and builds its model.
func NewLogistic(spec LogisticSpec) (*Model, error) { return nil, errUnimplemented }
