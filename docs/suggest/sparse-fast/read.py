import json, glob, sys, dataclasses
from pathlib import Path
sys.path[:0] = ['tools', 'python']
from dblink import suggest as S
import suggest_sweep as SW
import numpy as np
SW.SCENARIOS['fil-d0.05-fast']=('filaments',0.05,1500.0,60.0,150.0)
libs={'v9':'docs/suggest/heldout13/library-v9.json','v10':'docs/suggest/heldout14/library-v10.json',
      'v11':'docs/suggest/heldout17/library-v11.json'}
# files run before a measure was added get it (simulated again from their seeds; stored measures kept)
old=[Path(f) for f in sorted(glob.glob('docs/suggest/sparse-fast/sf*.json'))
     if any(k.name not in json.load(open(f))['fil-d0.05-fast']['measures'] for k in dataclasses.fields(S.Measures))]
if old:
    print(SW.remeasure(old))
rows=[]
for f in sorted(glob.glob('docs/suggest/sparse-fast/sf*.json')):
    r=json.load(open(f)).get('fil-d0.05-fast')
    if not r or 'measures' not in r: continue
    kw={k.name:r['measures'][k.name] for k in dataclasses.fields(S.Measures)}; kw['frames']=tuple(kw['frames'])
    m=S.Measures(**kw); f1={k:v['f1'] for k,v in r['grid'].items()}
    picks={n:S.setting_key(*(lambda c:(c['model'],c['frames_per_step'],c['window']))(S.from_library(m,path=p))) for n,p in libs.items()}
    rows.append((r['seed'],m.localizations,f1,picks))
keys=sorted(rows[0][2]); F=np.array([[r[2][k] for k in keys] for r in rows])
best=F.mean(0).argmax(); print('n',len(rows),'best single',keys[best],F.mean(0)[best].round(3))
for s,n,f1,p in rows:
    print(s,n,'own best',max(f1,key=f1.get),round(max(f1.values()),3),' '.join(f'{a}:{b} {f1[b]-f1[keys[best]]:+.3f}' for a,b in p.items()), 'S20W25', round(f1['filaments S=20 W=25']-f1[keys[best]],3))
for a in libs:
    d=[r[2][r[3][a]]-F[i,best] for i,r in enumerate(rows)]; print(a,'mean minus best single',np.mean(d).round(4))
