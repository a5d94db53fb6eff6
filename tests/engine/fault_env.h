// A rocksdb::Env that fails file reads or writes on demand, for the state store's fatal
// paths (what leveldb's tests do with SpecialEnv). Header-only; tests only.
#ifndef SLUICE_TESTS_ENGINE_FAULT_ENV_H_
#define SLUICE_TESTS_ENGINE_FAULT_ENV_H_

#include <rocksdb/env.h>

#include <atomic>
#include <memory>

namespace sluice::testing {

class FaultEnv : public rocksdb::EnvWrapper {
 public:
  FaultEnv() : rocksdb::EnvWrapper(rocksdb::Env::Default()) {}
  const char* Name() const override { return "FaultEnv"; }

  std::atomic<bool> fail_writes{false};      // Append, Sync and Flush of every file fail
  std::atomic<bool> fail_reads{false};       // Read of table files fails
  std::atomic<int> writes_after_failure{0};  // appends tried while fail_writes was set, or after

  rocksdb::Status NewWritableFile(const std::string& name,
                                  std::unique_ptr<rocksdb::WritableFile>* out,
                                  const rocksdb::EnvOptions& options) override {
    std::unique_ptr<rocksdb::WritableFile> file;
    rocksdb::Status s = target()->NewWritableFile(name, &file, options);
    if (s.ok()) out->reset(new Writable(std::move(file), this));
    return s;
  }
  rocksdb::Status ReuseWritableFile(const std::string& name, const std::string& old_name,
                                    std::unique_ptr<rocksdb::WritableFile>* out,
                                    const rocksdb::EnvOptions& options) override {
    std::unique_ptr<rocksdb::WritableFile> file;
    rocksdb::Status s = target()->ReuseWritableFile(name, old_name, &file, options);
    if (s.ok()) out->reset(new Writable(std::move(file), this));
    return s;
  }
  rocksdb::Status NewRandomAccessFile(const std::string& name,
                                      std::unique_ptr<rocksdb::RandomAccessFile>* out,
                                      const rocksdb::EnvOptions& options) override {
    std::unique_ptr<rocksdb::RandomAccessFile> file;
    rocksdb::Status s = target()->NewRandomAccessFile(name, &file, options);
    if (s.ok()) out->reset(new RandomAccess(std::move(file), this));
    return s;
  }

 private:
  static rocksdb::Status Injected() { return rocksdb::Status::IOError("injected by FaultEnv"); }

  class Writable : public rocksdb::WritableFileWrapper {
   public:
    Writable(std::unique_ptr<rocksdb::WritableFile> file, FaultEnv* env)
        : rocksdb::WritableFileWrapper(file.get()), file_(std::move(file)), env_(env) {}
    rocksdb::Status Append(const rocksdb::Slice& data) override {
      if (env_->failed_once_) ++env_->writes_after_failure;
      if (env_->fail_writes) {
        env_->failed_once_ = true;
        return Injected();
      }
      return rocksdb::WritableFileWrapper::Append(data);
    }
    rocksdb::Status Sync() override {
      return env_->fail_writes ? Injected() : rocksdb::WritableFileWrapper::Sync();
    }
    rocksdb::Status Fsync() override {
      return env_->fail_writes ? Injected() : rocksdb::WritableFileWrapper::Fsync();
    }

   private:
    std::unique_ptr<rocksdb::WritableFile> file_;
    FaultEnv* env_;
  };

  class RandomAccess : public rocksdb::RandomAccessFileWrapper {
   public:
    RandomAccess(std::unique_ptr<rocksdb::RandomAccessFile> file, FaultEnv* env)
        : rocksdb::RandomAccessFileWrapper(file.get()), file_(std::move(file)), env_(env) {}
    rocksdb::Status Read(uint64_t offset, size_t n, rocksdb::Slice* result,
                         char* scratch) const override {
      if (env_->fail_reads) return Injected();
      return rocksdb::RandomAccessFileWrapper::Read(offset, n, result, scratch);
    }

   private:
    std::unique_ptr<rocksdb::RandomAccessFile> file_;
    FaultEnv* env_;
  };

  std::atomic<bool> failed_once_{false};
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_ENGINE_FAULT_ENV_H_
