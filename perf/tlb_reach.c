// perf/tlb_reach.c: what a 4 KiB page costs against a 2 MiB one on this machine (perf/RESULTS.md,
// "Issue 22: hot text in huge pages"). A pointer chase (data) and a chain of jumps (code), one
// step per page in random order, over anonymous mappings with MADV_HUGEPAGE against
// MADV_NOHUGEPAGE; prints ns per step. Warm: every page is visited once before the timed passes.
//   clang -O2 -w -o /tmp/tlb_reach perf/tlb_reach.c && taskset -c 0 /tmp/tlb_reach
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
// data: pointer chase, one line per page, pages in random order
static double chase(int huge, size_t pages){
  size_t len=pages*4096; char*raw=mmap(0,len+(2<<20),PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  char*p=(char*)(((uintptr_t)raw+(2<<20)-1)&~(uintptr_t)((2<<20)-1));
  madvise(p,len,huge?MADV_HUGEPAGE:MADV_NOHUGEPAGE); memset(p,1,len);
  size_t*perm=malloc(pages*sizeof(size_t)); for(size_t i=0;i<pages;i++)perm[i]=i;
  srand(1); for(size_t i=pages-1;i>0;i--){size_t j=rand()%(i+1);size_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  // line offset varies per page to avoid cache set conflicts
  for(size_t i=0;i<pages;i++){ size_t a=perm[i], b=perm[(i+1)%pages]; *(char**)(p+a*4096+(a%64)*64)=p+b*4096+(b%64)*64; }
  char*q=p+perm[0]*4096+(perm[0]%64)*64; size_t n=pages*20; for(size_t i=0;i<pages;i++) q=*(char**)q;
  double t0=now(); for(size_t i=0;i<n;i++) q=*(char**)q; double t=(now()-t0)/n;
  if(!q) puts("x"); munmap(raw,len+(2<<20)); free(perm); return t;
}
// code: a chain of jumps, one per page, random order
static double jumps(int huge, size_t pages){
  size_t len=pages*4096; char*raw=mmap(0,len+(2<<20),PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  char*p=(char*)(((uintptr_t)raw+(2<<20)-1)&~(uintptr_t)((2<<20)-1));
  madvise(p,len,huge?MADV_HUGEPAGE:MADV_NOHUGEPAGE); memset(p,0xcc,len);
  size_t*perm=malloc(pages*sizeof(size_t)); for(size_t i=0;i<pages;i++)perm[i]=i;
  srand(2); for(size_t i=pages-1;i>0;i--){size_t j=rand()%(i+1);size_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  // each stub: dec rdi; jz ret; jmp rel32 next
  for(size_t i=0;i<pages;i++){ size_t a=perm[i], b=perm[(i+1)%pages]; char*s=p+a*4096+(a%64)*64; char*d=p+b*4096+(b%64)*64;
    s[0]=0x48;s[1]=0xff;s[2]=0xcf; s[3]=0x74;s[4]=0x05; s[5]=0xe9; int32_t rel=(int32_t)(d-(s+10)); memcpy(s+6,&rel,4); s[10]=0xc3; }
  mprotect(p,len,PROT_READ|PROT_EXEC);
  void(*f)(long)=(void(*)(long))(p+perm[0]*4096+(perm[0]%64)*64);
  f(pages); long n=pages*20; double t0=now(); f(n); double t=(now()-t0)/n;
  munmap(raw,len+(2<<20)); free(perm); return t;
}
int main(int c,char**v){ size_t sizes[]={64,512,2048,8192,32768};
  for(int k=0;k<5;k++){ size_t pg=sizes[k];
    printf("pages %6zu (%5zu MiB): data 4K %.2f ns  2M %.2f ns | code 4K %.2f ns  2M %.2f ns\n",pg,pg/256,chase(0,pg),chase(1,pg),jumps(0,pg),jumps(1,pg)); }
  return 0;}
