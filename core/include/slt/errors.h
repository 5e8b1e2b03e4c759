#pragma once
// Typed errors. Apps catch slt::Error once in main(), print the message and
// exit with exit_code(): 2 for problems the user can fix (bad config, bad
// input, bad plugin), 1 for internal failures.
#include <stdexcept>
#include <string>

namespace slt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  virtual int exit_code() const { return 1; }
};

// Something the user can fix: the message says what and how.
class UserError : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 2; }
};

class ConfigError : public UserError {
 public:
  using UserError::UserError;
};

class PluginError : public UserError {
 public:
  using UserError::UserError;
};

// A registry lookup that found nothing: names the valid choices.
class UnknownComponentError : public UserError {
 public:
  using UserError::UserError;
};

}  // namespace slt
