# Reference numbers only (docs/RESULTS.md, "Sequences"): a backprop-trained MLP 16-64-3 on the
# sep-sequence task's distribution (src/ep/window.c, eqp_sep_sequence_task: a point random-
# walking in the unit square, 16 Gaussian tuning curves, 3 classes), with its own random
# draws. Not part of the build or the tests. Run with Debian's python3 and python3-numpy:
#   /usr/bin/python3 scripts/ref_sep_sequence_mlp.py
import numpy as np
rng=np.random.default_rng(0)
def task(n,K=10):
    X=[];Y=[]
    for i in range(n):
        px,py=rng.uniform(),rng.uniform()
        for k in range(K):
            if k>0:
                px=min(1,max(0,px+0.15*rng.normal())); py=min(1,max(0,py+0.15*rng.normal()))
            j=np.arange(16); cx=((j%4)+0.5)/4; cy=((j//4)+0.5)/4
            X.append(np.exp(-((px-cx)**2+(py-cy)**2)/(2*0.04)))
            r=np.hypot(px-0.5,py-0.5)
            Y.append(0 if r<0.25 else 1+int((px>0.5)!=(py>0.5)))
    return np.array(X),np.array(Y)
Xtr,Ytr=task(512);Xte,Yte=task(256)
for H,act in [(64,'sig'),(64,'tanh')]:
  for seed in range(2):
    r=np.random.default_rng(seed)
    W1=r.normal(0,1/4,(16,H));b1=np.zeros(H);W2=r.normal(0,1/np.sqrt(H),(H,3));b2=np.zeros(3)
    P=[W1,b1,W2,b2];m=[np.zeros_like(p) for p in P];v=[np.zeros_like(p) for p in P];t=0
    f=(lambda z:1/(1+np.exp(-z))) if act=='sig' else np.tanh
    df=(lambda h:h*(1-h)) if act=='sig' else (lambda h:1-h*h)
    for ep in range(100):
        idx=r.permutation(len(Xtr))
        for i0 in range(0,len(idx),32):
            ii=idx[i0:i0+32];x=Xtr[ii];y=Ytr[ii]
            h=f(x@W1+b1);z=h@W2+b2;z-=z.max(1,keepdims=True);p=np.exp(z);p/=p.sum(1,keepdims=True)
            p[np.arange(len(y)),y]-=1;p/=len(y)
            gW2=h.T@p;gb2=p.sum(0);dh=(p@W2.T)*df(h);gW1=x.T@dh;gb1=dh.sum(0)
            t+=1
            for k,g in enumerate([gW1,gb1,gW2,gb2]):
                m[k]=0.9*m[k]+0.1*g;v[k]=0.999*v[k]+0.001*g*g
                P[k]-=1e-2*(m[k]/(1-0.9**t))/(np.sqrt(v[k]/(1-0.999**t))+1e-8)
        if ep in (9,29,99):
            h=f(Xte@W1+b1);pred=(h@W2+b2).argmax(1);print(H,act,seed,ep+1,"test err %.2f%%"%(100*(pred!=Yte).mean()))
