"""The demo's camera noise (`add-noise --type camera`), measured as noisy − clean with
the profile's figures, on a smooth image and on skimage's textured photos, at ISO 800,
1600 and 3200, three seeds each: the table of docs/noise.md.

    .venv/bin/python benchmarks/demo_camera_noise.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from skimage import data  # noqa: E402
from denoiser import noise, profile  # noqa: E402
sets={"smooth (flat gray 110)":[np.full((256,256,3),110,np.uint8)],"textured (astronaut, chelsea, coffee)":[data.astronaut(),data.chelsea(),data.coffee()]}
print("| clean images | level (ISO) | std | corr 1 px | 2 px | 4 px | luma/chroma |\n|---|---|---|---|---|---|---|")
for name,imgs in sets.items():
    for level in (8,16,32):
        rows=[]
        for im in imgs:
            c=(im/255.).astype(np.float32)
            for seed in range(3):
                p=profile.profile(noise.add_noise(c,"camera",level,rng=np.random.default_rng(seed)),c)
                rows.append([p.std,p.correlation[1],p.correlation[2],p.correlation[4],p.luma_chroma])
        a=np.array(rows); m=np.median(a,0); lo=a.min(0); hi=a.max(0)
        print(f"| {name} | {level} ({level*100}) | " + " | ".join(f"{m[i]:.2f} ({lo[i]:.2f}–{hi[i]:.2f})" for i in range(5)) + " |")
