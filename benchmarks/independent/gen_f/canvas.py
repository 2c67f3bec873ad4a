"""Fine-resolution object canvas (2.5 m cells) with per-object 6-band spectra and truth labels."""
import numpy as np

F = 4            # fine cells per 10 m pixel side (2.5 m)


class Canvas:
    def __init__(self, size):
        self.size = size
        self.n = size * F
        self.obj = np.zeros((self.n, self.n), np.int32)
        self.spec = [np.zeros(6)]
        self.label = [0]
        self.tex = [0.0]
        self.over = []            # (r0, c0, mask, dir-illumination values) overrides for cut faces / pads

    def add(self, spec, label=0, tex=0.06):
        self.spec.append(np.asarray(spec, float))
        self.label.append(int(label))
        self.tex.append(float(tex))
        return len(self.spec) - 1

    def paint(self, mask, oid, r0=0, c0=0):
        h, w = mask.shape
        self.obj[r0:r0 + h, c0:c0 + w][mask] = oid

    def copy(self):
        c = Canvas.__new__(Canvas)
        c.size, c.n = self.size, self.n
        c.obj = self.obj.copy()
        c.spec, c.label, c.tex, c.over = list(self.spec), list(self.label), list(self.tex), list(self.over)
        return c

    def window(self, r10, c10, half10):
        """Fine-grid window around a 10 m position: (r0, c0, rows10, cols10) with 10 m coords of cells."""
        r0 = int(max(0, np.floor((r10 - half10) * F)))
        c0 = int(max(0, np.floor((c10 - half10) * F)))
        r1 = int(min(self.n, np.ceil((r10 + half10) * F)))
        c1 = int(min(self.n, np.ceil((c10 + half10) * F)))
        if r1 <= r0 or c1 <= c0:
            return None
        rr = (np.arange(r0, r1) + 0.5) / F - 0.5
        cc = (np.arange(c0, c1) + 0.5) / F - 0.5
        R, C = np.meshgrid(rr, cc, indexing="ij")
        return r0, c0, R, C

    def truth(self):
        lab = np.asarray(self.label, np.int8)[self.obj]
        n = self.size
        fp = (lab >= 1).reshape(n, F, n, F).mean((1, 3))
        pd = (lab == 2).reshape(n, F, n, F).mean((1, 3))
        y = np.zeros((n, n), np.uint8)
        y[fp >= 0.5] = 1
        y[pd >= 0.5] = 2
        return y


def block_mean(a):
    n = a.shape[0] // F
    return a.reshape(n, F, n, F).mean((1, 3))


def upsample(a):
    return np.repeat(np.repeat(a, F, 0), F, 1)
