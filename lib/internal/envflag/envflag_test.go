package envflag

import "testing"

func TestTrue(t *testing.T) {
	for v, want := range map[string]bool{"1": true, " TRUE ": true, "yes": true, "on": true, "": false, "0": false, "off": false} {
		if True(v) != want {
			t.Errorf("True(%q) = %v", v, !want)
		}
	}
}
