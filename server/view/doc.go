// Package view is the read side of the case file: typed, consolidated views
// of a region's rows, for the rules and for the HTTP API.
//
// facts.go derives the intake facts the rules decide on straight from the
// store (LoadRows, IntakeInputs), for `samenplan rules dryrun`.
//
// Model is the in-memory read model the handlers query: per region, every
// family as a Case (members with ages, referrals with their live, explained
// eligibility, the current and past trajectories, plan goals by life domain,
// network, a contact timeline, fired signals, conflict and quarantine
// counts), the referrals of the intake board, consults, signals, coach load
// and year counts, in a go-memdb database indexed by region, coach, status,
// signal and family. It keeps each region's current state (the LWW winner of
// every field) in memory, so a commit updates it without a store query.
//
// Wiring, in cmd/ (the model needs the stores and the stores call the model,
// so the hook goes through a variable set before the stores serve):
//
//	var model *view.Model
//	stores, err := store.Open(ctx, dir, regions, store.Options{
//		OnCommit: func(c store.Commit) { model.Enqueue(c) }, // or model.Apply(c), in the writer
//	})
//	model = view.New(stores, registry, func() time.Time { return time.Now().In(brussels) })
//	model.SetLogger(logger)
//	if err := model.Build(ctx); err != nil { ... }   // before serving
//	go model.RunApplier(ctx)                         // applies what Enqueue queued (queue.go)
//	go model.RunDaily(ctx, logError)                 // a new day: ages, waiting days, signals
//
// When the registry activates a region's new rules, call RulesChanged(region)
// (a commit that finds the active version changed re-evaluates the region
// itself too). After a push that quarantined or conflicted, and after a
// quarantine decision, call SyncCounts(ctx, region): the store's commits do
// not report conflicts or quarantine.
//
// Apply, when wired directly, runs inside the store's write lock; through
// Enqueue it runs on the applier and on reads (queue.go). Either way it
// never calls back into the store (a contact costs about 0.2 ms with 10,000
// families). A whole-region re-evaluation (new rules, a new day) costs about
// 75 ms there.
//
// Queries read one memdb snapshot each and do not check access: Case and
// Referral answer for any region, so a handler compares Case.Region() with
// the caller's regions (and a coach's id with Case.Coaches). Board and All
// gather what one page needs from a single snapshot.
package view
