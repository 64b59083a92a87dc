package envflag

import "testing"

func TestTrue(t *testing.T) {
	for v, want := range map[string]bool{"1": true, " TRUE ": true, "yes": true, "on": true, "": false, "0": false, "off": false} {
		if True(v) != want {
			t.Errorf("True(%q) = %v", v, !want)
		}
	}
}

func TestFalse(t *testing.T) {
	for v, want := range map[string]bool{"0": true, " False ": true, "no": true, "off": true, "": false, "1": false, "maybe": false} {
		if False(v) != want {
			t.Errorf("False(%q) = %v", v, !want)
		}
	}
}
