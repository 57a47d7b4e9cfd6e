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
// An anonymous mapping of `pages` pages, 2 MiB-aligned, in huge pages or not, filled with `fill`,
// and the pages in a random order (seeded): each pass visits one line per page in that order,
// the line's offset varying per page so that the lines do not share cache sets.
typedef struct { char* raw; char* base; size_t len; size_t* order; } region;
static region map_region(int huge, size_t pages, int fill, unsigned seed){
  region r; r.len=pages*4096;
  r.raw=mmap(0,r.len+(2<<20),PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  r.base=(char*)(((uintptr_t)r.raw+(2<<20)-1)&~(uintptr_t)((2<<20)-1));
  madvise(r.base,r.len,huge?MADV_HUGEPAGE:MADV_NOHUGEPAGE); memset(r.base,fill,r.len);
  r.order=malloc(pages*sizeof(size_t)); for(size_t i=0;i<pages;i++) r.order[i]=i;
  srand(seed); for(size_t i=pages-1;i>0;i--){ size_t j=rand()%(i+1); size_t t=r.order[i]; r.order[i]=r.order[j]; r.order[j]=t; }
  return r;
}
static char* line_of(region* r, size_t page){ return r->base+page*4096+(page%64)*64; }
static void unmap_region(region* r){ munmap(r->raw,r->len+(2<<20)); free(r->order); }
// data: a pointer chase, one line per page
static double chase(int huge, size_t pages){
  region r=map_region(huge,pages,1,1);
  for(size_t i=0;i<pages;i++) *(char**)line_of(&r,r.order[i])=line_of(&r,r.order[(i+1)%pages]);
  char*q=line_of(&r,r.order[0]); size_t n=pages*20; for(size_t i=0;i<pages;i++) q=*(char**)q;
  double t0=now(); for(size_t i=0;i<n;i++) q=*(char**)q; double t=(now()-t0)/n;
  if(!q) puts("x"); unmap_region(&r); return t;
}
// code: a chain of jumps, one per page; each stub: dec rdi; jz ret; jmp rel32 next
static double jumps(int huge, size_t pages){
  region r=map_region(huge,pages,0xcc,2);
  for(size_t i=0;i<pages;i++){ char*s=line_of(&r,r.order[i]); char*d=line_of(&r,r.order[(i+1)%pages]);
    s[0]=0x48;s[1]=0xff;s[2]=0xcf; s[3]=0x74;s[4]=0x05; s[5]=0xe9; int32_t rel=(int32_t)(d-(s+10)); memcpy(s+6,&rel,4); s[10]=0xc3; }
  mprotect(r.base,r.len,PROT_READ|PROT_EXEC);
  void(*f)(long)=(void(*)(long))line_of(&r,r.order[0]);
  f(pages); long n=pages*20; double t0=now(); f(n); double t=(now()-t0)/n;
  unmap_region(&r); return t;
}
int main(int c,char**v){ size_t sizes[]={64,512,2048,8192,32768};
  for(int k=0;k<5;k++){ size_t pg=sizes[k];
    printf("pages %6zu (%5zu MiB): data 4K %.2f ns  2M %.2f ns | code 4K %.2f ns  2M %.2f ns\n",pg,pg/256,chase(0,pg),chase(1,pg),jumps(0,pg),jumps(1,pg)); }
  return 0;}
