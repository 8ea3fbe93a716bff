// Package rules loads, compiles, lints, tests, explains and hot-swaps the
// rule files of a region: eligibility and priority (intake.yaml), caseload and
// quotas (capacity.yaml) and warnings on running trajectories (signals.yaml),
// next to the region's configuration (region.yaml).
//
// Expressions are github.com/expr-lang/expr programs compiled against a typed
// environment per ruleset (IntakeEnv, CapacityEnv, SignalsEnv): an unknown name
// or a wrong type is an error at load time, reported as a Diagnostic with file,
// line, column and rule id. Params are substituted as constants at compile
// time, so `params.x` is checked like any other name.
//
// The layout on disk is <dir>/<region>/{region,intake,capacity,signals}.yaml.
// docs/rules.md holds the format and the vocabulary, in Dutch and English.
//
// Versions: a ruleset's version is the sha256 (hex) of its file's bytes; a
// region's version is the sha256 over its four files, each as
// "<name>\n<length>\n<bytes>" in the order region, intake, capacity, signals.
package rules
