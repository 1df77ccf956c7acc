package natsperm

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/insightops/insightops/shared/config"
)

// TestExampleSecretIsNotUsable: the example Secret, applied as is, gives
// no process a configuration production accepts: every secret in it is a
// placeholder that config.LoadRole refuses, naming the variable.
func TestExampleSecretIsNotUsable(t *testing.T) {
	t.Parallel()
	for _, c := range k8sContainers(t, k8sObjects(t), exampleSecrets(t, false)) {
		_, err := config.LoadRole(func(k string) string { return c.env[k] }, configRole(c.role))
		if err == nil {
			t.Errorf("%s starts on the example Secret's placeholders", c.where)
			continue
		}
		var refused []string
		for _, p := range config.Problems(err) {
			refused = append(refused, p.Var)
		}
		for _, v := range []string{"NATS_URL", "DATABASE_URL"} {
			if !slices.Contains(refused, v) {
				t.Errorf("%s: the example's %s is not refused (%v)", c.where, v, refused)
			}
		}
	}
}

// TestK8sPodsArePinnedAndHoldNoToken: every image of deploy/k8s has a
// version tag (never :latest; the insightops images the Makefile's
// IMAGE_TAG, which `make docker` builds), and no pod mounts a
// service-account token (no insightops process calls the Kubernetes API).
func TestK8sPodsArePinnedAndHoldNoToken(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile(repoPath(t, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE_TAG \?= (\S+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no IMAGE_TAG ?= default")
	}
	tag := string(m[1])
	if tag == "latest" {
		t.Fatal("Makefile builds :latest")
	}
	pods := 0
	for _, o := range k8sObjects(t) {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		pods++
		if a := o.Spec.Template.Spec.Automount; a == nil || *a {
			t.Errorf("%s %s: automountServiceAccountToken is not false", o.Kind, o.Metadata.Name)
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			name, ver, ok := strings.Cut(filepath.Base(c.Image), ":")
			switch {
			case !ok || ver == "" || ver == "latest":
				t.Errorf("%s %s: image %q is not pinned to a version", o.Kind, o.Metadata.Name, c.Image)
			case strings.HasPrefix(name, "insightops-") && ver != tag:
				t.Errorf("%s %s: image %q, the Makefile builds %s", o.Kind, o.Metadata.Name, c.Image, tag)
			}
		}
	}
	if pods == 0 {
		t.Fatal("no pod templates in deploy/k8s")
	}
}

// netpol is the part of a NetworkPolicy these checks read.
type netpol struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		PodSelector selector `yaml:"podSelector"`
		PolicyTypes []string `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				NamespaceSelector *selector `yaml:"namespaceSelector"`
				PodSelector       *selector `yaml:"podSelector"`
			} `yaml:"from"`
			Ports []struct {
				Port int `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// peer describes one allowed source as "ns=<namespace> pod=<name label>"
// ("*" for any).
func peer(ns, pod *selector) string {
	n, p := "*", "*"
	if ns != nil {
		n = ns.MatchLabels["kubernetes.io/metadata.name"]
	}
	if pod != nil {
		p = pod.MatchLabels["app.kubernetes.io/name"] + pod.MatchLabels["app.kubernetes.io/part-of"]
	}
	if ns == nil && pod != nil {
		n = "(own)"
	}
	return "ns=" + n + " pod=" + p
}

// TestNetworkPoliciesRestrictNATSAndTheAPI reads deploy/k8s's
// NetworkPolicies: insightops denies all ingress by default; the API port
// is open to the ingress controller's namespace only; NATS routes (6222)
// only to the NATS pods, clients (4222) only to insightops pods of the
// insightops namespace, monitoring (8222) only to KEDA and Prometheus.
func TestNetworkPoliciesRestrictNATSAndTheAPI(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(repoPath(t, "deploy", "k8s", "networkpolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// allowed[namespace/podSelector name][port] = the sources
	allowed := map[string]map[int][]string{}
	denyAll := false
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	for {
		var np netpol
		if err := dec.Decode(&np); err != nil {
			break
		}
		if np.Kind != "NetworkPolicy" {
			continue
		}
		ns := np.Metadata.Namespace
		if ns == "" {
			ns = "insightops"
		}
		target := ns + "/" + np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"]
		if len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.Ingress) == 0 && slices.Contains(np.Spec.PolicyTypes, "Ingress") && ns == "insightops" {
			denyAll = true
		}
		for _, in := range np.Spec.Ingress {
			if len(in.Ports) == 0 || len(in.From) == 0 {
				t.Errorf("%s: an ingress rule without ports or sources opens everything", np.Metadata.Name)
			}
			for _, p := range in.Ports {
				if allowed[target] == nil {
					allowed[target] = map[int][]string{}
				}
				for _, f := range in.From {
					allowed[target][p.Port] = append(allowed[target][p.Port], peer(f.NamespaceSelector, f.PodSelector))
				}
			}
		}
	}
	if !denyAll {
		t.Error("no default-deny ingress policy for the insightops namespace")
	}
	for _, tc := range []struct {
		target string
		port   int
		want   []string
	}{
		{"nats/nats", 6222, []string{"ns=(own) pod=nats"}},
		{"nats/nats", 4222, []string{"ns=insightops pod=insightops"}},
		{"nats/nats", 8222, []string{"ns=keda pod=*", "ns=monitoring pod=*"}},
		{"insightops/insightops-api", 8000, []string{"ns=ingress-nginx pod=*"}},
	} {
		if got := allowed[tc.target][tc.port]; !slices.Equal(got, tc.want) {
			t.Errorf("%s port %d is open to %v, want exactly %v", tc.target, tc.port, got, tc.want)
		}
	}
	if ports := allowed["nats/nats"]; len(ports) != 3 {
		t.Errorf("the NATS pods open ports %v, want 6222, 4222, 8222 only", ports)
	}
}
