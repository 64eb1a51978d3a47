import sys; sys.path[:0] = ['tools', 'python']
from pathlib import Path
import suggest_sweep as SW
SW.SCENARIOS['fil-d0.05-fast']=('filaments',0.05,1500.0,60.0,150.0)
for s in [int(a) for a in sys.argv[1:]]:
    SW.run(Path(f'docs/suggest/sparse-fast/sf{s}.json'),64,1000,s,['fil-d0.05-fast'],grid_only=True,both=True)
