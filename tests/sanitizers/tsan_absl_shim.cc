// ThreadSanitizer build only (-DWMTY_SANITIZE=thread, cmake/WmtySanitizers.cmake
// adds this file to every executable): makes absl::Mutex, absl::CondVar and
// absl::Notification visible to TSan.
//
// Why: Debian's Abseil is not built with TSan. absl::Mutex::Lock/Unlock and
// friends are out-of-line functions of the uninstrumented
// libabsl_synchronization.so, so TSan never learns that the Store's,
// the HTTP server's or gRPC's critical sections are ordered, and reports
// every access to data those mutexes guard as a race.
//
// How: this file defines those member functions again, in the executable.
// Executable definitions come first in symbol lookup, so every call (from our
// code, and, because the executable exports them (tsan_absl_shim.dynlist),
// from gRPC and Abseil itself) lands here. Each one calls the real function (dlsym(RTLD_NEXT,
// mangled name)) and tells TSan what it did with the mutex annotations of
// sanitizer/tsan_interface.h, as Abseil does when it is itself built with
// TSan: __tsan_mutex_pre_lock/post_lock around a lock, pre_unlock/post_unlock
// around an unlock (a wait is an unlock and a lock). TSan then knows the
// mutex (held/not held, happens-before from unlock to the next lock), and it
// ignores the memory accesses made inside the real functions. That matters:
// absl::Mutex evaluates a waiter's Condition (our code, reading the guarded
// state) inside whichever thread is unlocking; seen as ordinary accesses
// after that thread's release, those reads would be reported as races.
// Notification::Notify is a release on the notification, returning from
// WaitForNotification an acquire (__tsan_release/__tsan_acquire).
//
// What TSan then still sees: every access our (instrumented) code makes, with
// the happens-before edges of these locks, std::mutex/std::thread (intercepted
// by TSan itself) and atomics in our code. Removing a lock from our code makes
// TSan report the race again (docs/testing.md says how this was checked).
// Limits: Await and CondVar waits are annotated as waits under a writer lock
// (all of ours are); a check of Notification::HasBeenNotified() (inline,
// reading an atomic the library stored) is not an acquire.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <sanitizer/tsan_interface.h>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

#if ABSL_OPTION_USE_INLINE_NAMESPACE
#define WMTY_ABSL_STR2(x) #x
#define WMTY_ABSL_STR(x) WMTY_ABSL_STR2(x)
constexpr const char* kAbslInlineNamespace = WMTY_ABSL_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
#else
constexpr const char* kAbslInlineNamespace = "";
#endif

// The mangled name of absl::<suffix>, e.g. "5Mutex4LockEv" ->
// "_ZN4absl7debian35Mutex4LockEv" (const member functions: "_ZNK...").
std::string Mangled(const char* suffix, bool is_const) {
  std::string ns = kAbslInlineNamespace;
  std::string out = is_const ? "_ZNK4absl" : "_ZN4absl";
  if (!ns.empty()) out += std::to_string(ns.size()) + ns;
  return out + suffix;
}

template <class Fn>
Fn Real(const char* suffix, bool is_const = false) {
  const std::string name = Mangled(suffix, is_const);
  void* f = dlsym(RTLD_NEXT, name.c_str());
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_shim: %s not found in the libraries after the executable\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(f);
}

using Condition = absl::Condition;

constexpr unsigned kWrite = 0;
constexpr unsigned kRead = __tsan_mutex_read_lock;

// Only the outermost interposed call of a thread is annotated: the real
// functions call each other through the same symbols (AwaitWithTimeout calls
// AwaitWithDeadline, Notify locks a Mutex), and annotating those again would
// unlock twice.
thread_local int interposed_depth = 0;
class Outermost {
 public:
  Outermost() : outer_(interposed_depth++ == 0) {}
  ~Outermost() { --interposed_depth; }
  explicit operator bool() const { return outer_; }

 private:
  const bool outer_;
};

// The real call happens between Before* and After*; TSan ignores its accesses.
void BeforeLock(void* mu, unsigned flags) { __tsan_mutex_pre_lock(mu, flags); }
void AfterLock(void* mu, unsigned flags) { __tsan_mutex_post_lock(mu, flags, 0); }
void BeforeTryLock(void* mu, unsigned flags) { __tsan_mutex_pre_lock(mu, flags | __tsan_mutex_try_lock); }
void AfterTryLock(void* mu, unsigned flags, bool locked) {
  __tsan_mutex_post_lock(mu, flags | __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
}
void BeforeUnlock(void* mu, unsigned flags) { __tsan_mutex_pre_unlock(mu, flags); }
void AfterUnlock(void* mu, unsigned flags) { __tsan_mutex_post_unlock(mu, flags); }
// A wait inside a critical section: unlocked on entry, locked again on return.
void BeforeWait(void* mu) { __tsan_mutex_pre_unlock(mu, kWrite); }
void AfterWait(void* mu) {
  __tsan_mutex_post_unlock(mu, kWrite);
  __tsan_mutex_pre_lock(mu, kWrite);
  __tsan_mutex_post_lock(mu, kWrite, 0);
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// ---- Mutex: locks.

void Mutex::Lock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex4LockEv");
  const Outermost outer;
  if (outer) BeforeLock(this, kWrite);
  real(this);
  if (outer) AfterLock(this, kWrite);
}

void Mutex::ReaderLock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  const Outermost outer;
  if (outer) BeforeLock(this, kRead);
  real(this);
  if (outer) AfterLock(this, kRead);
}

bool Mutex::TryLock() {
  static auto real = Real<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  const Outermost outer;
  if (outer) BeforeTryLock(this, kWrite);
  const bool locked = real(this);
  if (outer) AfterTryLock(this, kWrite, locked);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static auto real = Real<bool (*)(Mutex*)>("5Mutex13ReaderTryLockEv");
  const Outermost outer;
  if (outer) BeforeTryLock(this, kRead);
  const bool locked = real(this);
  if (outer) AfterTryLock(this, kRead, locked);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>("5Mutex8LockWhenERKNS0_9ConditionE");
  const Outermost outer;
  if (outer) BeforeLock(this, kWrite);
  real(this, cond);
  if (outer) AfterLock(this, kWrite);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>("5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  const Outermost outer;
  if (outer) BeforeLock(this, kRead);
  real(this, cond);
  if (outer) AfterLock(this, kRead);
}

// The ...WithTimeout/Deadline forms hold the lock on return either way.
bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Outermost outer;
  if (outer) BeforeLock(this, kWrite);
  const bool met = real(this, cond, timeout);
  if (outer) AfterLock(this, kWrite);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real =
      Real<bool (*)(Mutex*, const Condition&, absl::Time)>("5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Outermost outer;
  if (outer) BeforeLock(this, kWrite);
  const bool met = real(this, cond, deadline);
  if (outer) AfterLock(this, kWrite);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Outermost outer;
  if (outer) BeforeLock(this, kRead);
  const bool met = real(this, cond, timeout);
  if (outer) AfterLock(this, kRead);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Outermost outer;
  if (outer) BeforeLock(this, kRead);
  const bool met = real(this, cond, deadline);
  if (outer) AfterLock(this, kRead);
  return met;
}

// ---- Mutex: unlocks.

void Mutex::Unlock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex6UnlockEv");
  const Outermost outer;
  if (outer) BeforeUnlock(this, kWrite);
  real(this);
  if (outer) AfterUnlock(this, kWrite);
}

void Mutex::ReaderUnlock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  const Outermost outer;
  if (outer) BeforeUnlock(this, kRead);
  real(this);
  if (outer) AfterUnlock(this, kRead);
}

// ---- Waits inside a critical section: the lock is let go and taken again.

void Mutex::Await(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>("5Mutex5AwaitERKNS0_9ConditionE");
  const Outermost outer;
  if (outer) BeforeWait(this);
  real(this, cond);
  if (outer) AfterWait(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Outermost outer;
  if (outer) BeforeWait(this);
  const bool met = real(this, cond, timeout);
  if (outer) AfterWait(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real =
      Real<bool (*)(Mutex*, const Condition&, absl::Time)>("5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Outermost outer;
  if (outer) BeforeWait(this);
  const bool met = real(this, cond, deadline);
  if (outer) AfterWait(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  static auto real = Real<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  const Outermost outer;
  if (outer) BeforeWait(mu);
  real(this, mu);
  if (outer) AfterWait(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static auto real =
      Real<bool (*)(CondVar*, Mutex*, absl::Duration)>("7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  const Outermost outer;
  if (outer) BeforeWait(mu);
  const bool timed_out = real(this, mu, timeout);
  if (outer) AfterWait(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>("7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  const Outermost outer;
  if (outer) BeforeWait(mu);
  const bool timed_out = real(this, mu, deadline);
  if (outer) AfterWait(mu);
  return timed_out;
}

// ---- Notification: Notify releases, a finished wait acquires.

void Notification::Notify() {
  static auto real = Real<void (*)(Notification*)>("12Notification6NotifyEv");
  const Outermost outer;
  if (outer) __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static auto real = Real<void (*)(const Notification*)>("12Notification19WaitForNotificationEv", true);
  const Outermost outer;
  real(this);
  if (outer) __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  static auto real = Real<bool (*)(const Notification*, absl::Duration)>(
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE", true);
  const Outermost outer;
  const bool notified = real(this, timeout);
  if (outer && notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  static auto real = Real<bool (*)(const Notification*, absl::Time)>(
      "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE", true);
  const Outermost outer;
  const bool notified = real(this, deadline);
  if (outer && notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
