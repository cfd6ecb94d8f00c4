// flux-apply: what Flux's kustomize-controller sends to the apiserver when it
// reconciles a Kustomization, and what `flux diff kustomization` sends, for the
// e2e tests. It runs the same library as both (github.com/fluxcd/pkg/ssa) with the
// options they set; see README.md beside this file for where each comes from.
//
//	flux-apply apply [flags] DIR   server-side apply, staged, with ssa's dry-run drift detection
//	flux-apply diff  [flags] DIR   ssa's Diff (a server-side dry-run apply) per object
//
// DIR is a folder of plain YAML manifests (what kustomize-controller applies when the
// folder has no kustomization.yaml: every *.yaml and *.yml file, recursively).
//
// apply prints the change set, one line per object ("Kind/ns/name action"), and exits
// 0, or 1 with the error (the apiserver's message) on stderr.
// diff prints one line per created, drifted or skipped object (a drifted one followed
// by the difference) and exits 0 when nothing would change, 1 when something would, 2
// on an error such as a dry run refused by an admission webhook.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

const (
	// kustomize-controller's main.go: controllerName; its API group is the owner label prefix.
	controllerName  = "kustomize-controller"
	controllerGroup = "kustomize.toolkit.fluxcd.io"
	// kustomize-controller runs as this ServiceAccount (flux install's default).
	defaultUser = "system:serviceaccount:flux-system:kustomize-controller"
	// kustomize-controller's --concurrent-ssa default.
	concurrentSSA = 4
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	kubeconfig      string
	namespace       string
	name            string
	targetNamespace string
	as              string
	asGroups        stringList
	force           bool
	timeout         time.Duration
	dir             string
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: flux-apply apply|diff [flags] DIR
  --kubeconfig FILE         kubeconfig (default $KUBECONFIG)
  --namespace NS            the Kustomization's namespace (default flux-system)
  --name NAME               the Kustomization's name (required)
  --target-namespace NS     spec.targetNamespace: set on every namespaced object
  --as USER                 impersonate USER (default `+defaultUser+`; "" = none)
  --as-group GROUP          impersonate GROUP too (repeatable)
  --force                   spec.force: recreate objects whose immutable fields changed
  --timeout DURATION        spec.timeout (default 2m)
`)
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "apply" && os.Args[1] != "diff") {
		usage()
		os.Exit(2)
	}
	cmd := os.Args[1]
	var o options
	fl := flag.NewFlagSet("flux-apply "+cmd, flag.ContinueOnError)
	fl.Usage = usage
	fl.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "")
	fl.StringVar(&o.namespace, "namespace", "flux-system", "")
	fl.StringVar(&o.name, "name", "", "")
	fl.StringVar(&o.targetNamespace, "target-namespace", "", "")
	fl.StringVar(&o.as, "as", defaultUser, "")
	fl.Var(&o.asGroups, "as-group", "")
	fl.BoolVar(&o.force, "force", false, "")
	fl.DurationVar(&o.timeout, "timeout", 2*time.Minute, "")
	if err := fl.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	if fl.NArg() != 1 || o.name == "" {
		usage()
		os.Exit(2)
	}
	o.dir = fl.Arg(0)

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var code int
	var err error
	if cmd == "apply" {
		code, err = runApply(ctx, o)
	} else {
		code, err = runDiff(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
	}
	os.Exit(code)
}

// setup builds the client the way kustomize-controller's impersonator does
// (rest config with Impersonate.UserName, a controller-runtime client with a
// dynamic RESTMapper), reads the objects and sets the owner labels.
func setup(o options) (*ssa.ResourceManager, []*unstructured.Unstructured, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig: %w", err)
	}
	// kustomize-controller's defaults for --kube-api-qps / --kube-api-burst.
	cfg.QPS, cfg.Burst = 50, 300
	if o.as != "" || len(o.asGroups) > 0 {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: o.as, Groups: o.asGroups}
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	kubeClient, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return nil, nil, err
	}

	objects, err := readDir(o.dir)
	if err != nil {
		return nil, nil, err
	}
	if o.targetNamespace != "" {
		// kustomize's namespace transformer (what spec.targetNamespace turns into).
		for _, obj := range objects {
			namespaced, err := apiutil.IsGVKNamespaced(obj.GroupVersionKind(), mapper)
			if err != nil && !apimeta.IsNoMatchError(err) {
				return nil, nil, err
			}
			if namespaced {
				obj.SetNamespace(o.targetNamespace)
			}
		}
	}

	poller := polling.NewStatusPoller(kubeClient, mapper, polling.Options{})
	manager := ssa.NewResourceManager(kubeClient, poller, ssa.Owner{Field: controllerName, Group: controllerGroup})
	manager.SetOwnerLabels(objects, o.name, o.namespace)
	manager.SetConcurrency(concurrentSSA)
	return manager, objects, nil
}

// readDir reads what kustomize-controller's generated kustomization.yaml would list
// (fluxcd/pkg/kustomize scanManifests: *.yaml and *.yml, recursively) with ssa's reader.
func readDir(dir string) ([]*unstructured.Unstructured, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch d.Name() {
		case "kustomization.yaml", "kustomization.yml", "Kustomization":
			return fmt.Errorf("%s: kustomize overlays are not emulated; give a folder of plain manifests", path)
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var objects []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		objs, err := ssautil.ReadObjects(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, obj := range objs {
			// kustomize-controller's build(): resources must have apiVersion, kind and name.
			if obj.GetName() == "" || obj.GetKind() == "" || obj.GetAPIVersion() == "" {
				return nil, fmt.Errorf("%s: failed to decode Kubernetes apiVersion, kind and name", f)
			}
		}
		objects = append(objects, objs...)
	}
	return objects, nil
}

// applyOptions is kustomize-controller's apply() for a Kustomization with no
// spec.ignore, no commonMetadata and no --override-manager flags.
func applyOptions(force bool) ssa.ApplyOptions {
	opts := ssa.DefaultApplyOptions()
	opts.Force = force
	opts.ExclusionSelector = map[string]string{
		controllerGroup + "/reconcile": "disabled",
		controllerGroup + "/ssa":       "Ignore",
	}
	opts.IfNotPresentSelector = map[string]string{
		controllerGroup + "/ssa": "IfNotPresent",
	}
	opts.ForceSelector = map[string]string{
		controllerGroup + "/force": "enabled",
	}
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{
			corev1.LastAppliedConfigAnnotation,
			"kustomize.toolkit.fluxcd.io/checksum",
			"fluxcd.io/sync-checksum",
		},
		Labels: []string{"fluxcd.io/sync-gc-mark"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: controllerName, OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{controllerGroup + "/ssa": "Merge"},
	}
	return opts
}

func runApply(ctx context.Context, o options) (int, error) {
	manager, objects, err := setup(o)
	if err != nil {
		return 1, err
	}
	if err := normalize.UnstructuredList(objects); err != nil {
		return 1, err
	}
	changeSet, err := manager.ApplyAllStaged(ctx, objects, applyOptions(o.force))
	if changeSet != nil {
		for _, e := range changeSet.Entries {
			fmt.Println(e.String())
		}
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

func runDiff(ctx context.Context, o options) (int, error) {
	manager, objects, err := setup(o)
	if err != nil {
		return 2, err
	}
	if err := normalize.UnstructuredList(objects); err != nil {
		return 2, err
	}
	// flux2 internal/build/diff.go: the same selectors as the apply, errors gathered.
	diffOpts := ssa.DiffOptions{
		Exclusions: map[string]string{
			controllerGroup + "/reconcile": "disabled",
			controllerGroup + "/ssa":       "ignore",
		},
		IfNotPresentSelector: map[string]string{controllerGroup + "/ssa": "ifnotpresent"},
		ForceSelector:        map[string]string{controllerGroup + "/force": "enabled"},
	}
	var errs []error
	changed := false
	for _, obj := range objects {
		change, live, merged, err := manager.Diff(ctx, obj, diffOpts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch change.Action {
		case ssa.SkippedAction:
			fmt.Printf("► %s skipped\n", change.Subject)
		case ssa.CreatedAction:
			fmt.Printf("► %s created\n", change.Subject)
			changed = true
		case ssa.ConfiguredAction:
			fmt.Printf("► %s drifted\n", change.Subject)
			fmt.Println(indent(cmp.Diff(live.Object, merged.Object)))
			changed = true
		}
	}
	if len(errs) > 0 {
		return 2, errors.Join(errs...)
	}
	if changed {
		return 1, nil
	}
	return 0, nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
